"""Errors Meta puts inside webhooks: `messages[].errors` kept with the message, `value.errors` raised as an alert."""

from __future__ import annotations

from sqlalchemy import select

from shared import events
from shared.models import Direction, Message
from shared.models.base import utcnow
from tests.unit.test_conversations import deliver, inbound, number, the_conversation  # noqa: F401
from tests.unit.test_whatsapp_channel import NUMBER, envelope


def test_an_unsupported_message_keeps_metas_error_and_the_api_shows_it(deliver, db_session, client, admin_headers):
    deliver(inbound({"type": "unsupported", "errors": [{
        "code": 131051, "title": "Message type unknown", "message": "Message type unknown",
        "error_data": {"details": "Message type is currently not supported."}}]}))
    message = db_session.execute(select(Message).where(Message.direction == Direction.inbound)).scalar_one()
    assert (message.error_code, message.error_message) == (
        "131051", "Message type unknown - Message type is currently not supported.")
    listed = client.get(f"/api/v1/conversations/{the_conversation(db_session).id}/messages",
                        headers=admin_headers).get_json()["items"]
    assert [(m["type"], m["error_code"]) for m in listed] == [("unsupported", "131051")]


def test_an_error_with_no_message_is_an_alert_on_the_number(deliver, db_session, organization, number):
    deliver(envelope("messages", {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": NUMBER["display_phone_number"], "phone_number_id": NUMBER["phone_number_id"]},
        "errors": [{"code": 131000, "title": "Something went wrong", "message": "Something went wrong",
                    "error_data": {"details": "Unknown error; try again"}, "href": "https://developers.facebook.com/"}],
    }))
    assert db_session.execute(select(Message)).first() is None  # nothing to store it with
    alerts = [event for event in events.events_for(org_id=organization.id, subject_type="number",
                                                     subject_id=number["id"])
              if event["event"] == "alerts.webhook_error"]
    assert len(alerts) == 1
    assert {k: alerts[0]["data"][k] for k in ("code", "title", "details")} == {
        "code": 131000, "title": "Something went wrong", "details": "Unknown error; try again"}
    assert alerts[0]["occurred_at"].year == utcnow().year


def test_a_batch_mixing_messages_with_and_without_errors_is_stored_whole(deliver, db_session):
    deliver(inbound({"type": "text", "text": {"body": "hello"}},
                    {"type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown"}]}))
    stored = db_session.execute(select(Message.type, Message.error_code).where(Message.direction == Direction.inbound)
                                .order_by(Message.sequence)).all()
    assert [tuple(row) for row in stored] == [("text", None), ("unsupported", "131051")]
