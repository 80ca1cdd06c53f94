"""Sandbox tests need no database or Redis: a Flask test client for the sandbox, and a real local HTTP
receiver where it delivers its signed webhooks. (The root conftest's database fixtures are not used.)"""

from __future__ import annotations

import pytest

from sandbox.app import create_app
from tests.sandbox.helpers import NUMBER, PHONE_NUMBER_ID, WebhookReceiver


@pytest.fixture
def receiver():
    endpoint = WebhookReceiver()
    yield endpoint
    endpoint.close()


@pytest.fixture
def sandbox_app():
    app = create_app({"numbers": [NUMBER], "template_review_seconds": 0.05, "webhook_retry_delays": [0.02, 0.02]})
    yield app
    app.extensions["sandbox"].close()


@pytest.fixture
def graph(sandbox_app):
    """Test client of the sandbox with one registered number and nothing else."""
    return sandbox_app.test_client()


@pytest.fixture
def with_receiver(graph, receiver):
    """The test client, with the number's callback pointed at the local receiver."""
    response = graph.patch(f"/_sandbox/numbers/{PHONE_NUMBER_ID}", json={"callback_url": receiver.url})
    assert response.status_code == 200
    return graph


