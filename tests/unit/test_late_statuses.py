"""A status Meta delivers after a later one (delivered after read) fills its own time, never moves the status back."""

from __future__ import annotations

import datetime as dt

from shared.models import Message, MessageStatus
from shared.models.base import utcnow
from tests.unit.test_conversations import deliver, inbound, number, sent_reply, statuses, text  # noqa: F401


def test_delivered_after_read_fills_its_own_time_and_the_message_stays_read(deliver, db_session, client,
                                                                             admin_headers):
    deliver(inbound(text("Hi")))
    message_id = sent_reply(db_session, client, admin_headers, "wamid.late-1").id
    now = int(utcnow().timestamp())
    deliver(statuses({"id": "wamid.late-1", "status": "read", "timestamp": str(now)}))
    deliver(statuses({"id": "wamid.late-1", "status": "delivered", "timestamp": str(now - 30)}))
    deliver(statuses({"id": "wamid.late-1", "status": "delivered", "timestamp": str(now - 10)}))  # a repeat, later
    message = db_session.get(Message, message_id)
    assert message.status == MessageStatus.read
    assert message.read_at == dt.datetime.fromtimestamp(now, dt.UTC)
    assert message.delivered_at == dt.datetime.fromtimestamp(now - 30, dt.UTC)  # Meta's own, not read's
    listed = client.get(f"/api/v1/messages/{message_id}", headers=admin_headers).get_json()
    assert listed["status"] == "read" and listed["delivered_at"].startswith(
        dt.datetime.fromtimestamp(now - 30, dt.UTC).isoformat()[:19])
