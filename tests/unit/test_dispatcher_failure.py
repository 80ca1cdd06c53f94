"""A dispatcher that fails (its database gone for a moment) frees its number's lease at once, so the next message
or sweep starts another dispatcher instead of waiting for the lease to lapse."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from shared.redis_client import get_redis
from shared.services import sending
from tests.unit.test_conversations import deliver, inbound, number, text, the_conversation  # noqa: F401
from workers.tasks import sends


def test_a_failed_dispatcher_releases_its_lease(deliver, db_session, client, admin_headers, monkeypatch):
    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    number_id = str(conversation.number_id)

    def database_gone(*_args, **_kwargs):
        raise OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(sending, "claim_batch", database_gone)
    with pytest.raises(OperationalError):
        sends.dispatch_number(number_id=number_id, org_id=str(conversation.organization_id))
    assert get_redis().get(sending.lease_key(number_id)) is None
    assert sending.take_lease(number_id, "next-dispatcher")  # free for the next one at once
