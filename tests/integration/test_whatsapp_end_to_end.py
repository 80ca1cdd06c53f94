"""PyTake against the Cloud API sandbox, end to end: web, a real worker, and the sandbox's signed webhooks.

A template created through PyTake's API is submitted by the worker, approved by the sandbox, and its
status arrives by webhook; a quality downgrade in the sandbox changes the number's rating here.
"""

import pytest
import requests

from shared.db import unit_of_work
from shared.models import Organization, WhatsAppNumber
from shared.services import numbers, templates
from tests.factories import make_user
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

NUMBER = {"waba_id": "700100200", "phone_number_id": "800100200", "display_phone_number": "15550100200",
          "access_token": "EAAG-sandbox-token-1", "app_secret": "sandbox-app-secret-1"}


@pytest.fixture
def connected(web, sandbox, app):
    """An organization with the number connected in PyTake and registered in the sandbox."""
    with unit_of_work() as session:
        org = Organization(name="Channel Org", plan_code="enterprise")
        session.add(org)
        session.flush()
        admin = make_user(session, org, role="org_admin")
        number = numbers.create_number(session, org=org, **NUMBER)
        org_id, number_id = org.id, number.id
    from web.auth import issue_tokens

    with app.app_context():
        token = issue_tokens(admin)["access_token"]
    requests.post(f"{sandbox}/_sandbox/numbers", json={
        **NUMBER, "callback_url": f"{web}/api/v1/webhooks/whatsapp"}, timeout=5).raise_for_status()
    return {"org_id": org_id, "number_id": number_id, "headers": {"Authorization": f"Bearer {token}"}}


def test_a_template_created_here_is_approved_by_the_sandbox_via_webhook(worker, web, connected):
    response = requests.post(f"{web}/api/v1/templates", headers=connected["headers"], json={
        "number_id": str(connected["number_id"]), "name": "order_update", "language": "en_US", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} is on its way.",
                        "example": {"body_text": [["Ana", "#1042"]]}}],
    }, timeout=10)
    assert response.status_code == 202, response.text
    template_id = response.json()["id"]

    def status():
        with unit_of_work() as session:
            return templates.get_template(session, org_id=connected["org_id"], template_id=template_id).status

    assert wait_for(lambda: status() == "APPROVED", timeout=60, interval=0.3, what="the template's approval")


def test_a_quality_downgrade_in_the_sandbox_changes_the_rating_here(worker, sandbox, connected):
    requests.post(f"{sandbox}/_sandbox/numbers/{NUMBER['phone_number_id']}/quality",
                  json={"quality_rating": "RED"}, timeout=5).raise_for_status()

    def rating():
        with unit_of_work() as session:
            return session.get(WhatsAppNumber, connected["number_id"]).quality_rating

    assert wait_for(lambda: rating() == "RED", timeout=60, interval=0.3, what="the quality update")
