"""What the webhooks carry, kept: forwarded flags of inbound messages, and Meta's `pricing` and `conversation`
objects of status webhooks, stored on the message and shown by the messages API (through the webhook path)."""

from __future__ import annotations

from shared.models import Direction, Message, MessageStatus
from shared.services import messages, send_outcomes, sending
from tests.unit.test_conversations import (  # noqa: F401 (deliver and number are fixtures)
    deliver,
    inbound,
    inbound_messages,
    number,
    statuses,
    text,
    the_conversation,
)
from tests.unit.test_whatsapp_channel import NUMBER

PRICING = {"billable": True, "pricing_model": "PMP", "category": "marketing", "type": "regular"}
CONVERSATION = {"id": "c1f3", "expiration_timestamp": "1789209856", "origin": {"type": "marketing"}}
EXPIRES_AT = "2026-09-12T10:44:16+00:00"  # 1789209856


def _listed(client, headers, conversation) -> dict[str, dict]:
    """The messages API's items of the conversation, by message id."""
    response = client.get(f"/api/v1/conversations/{conversation.id}/messages", query_string={"limit": 50},
                          headers=headers)
    assert response.status_code == 200, response.get_json()
    return {item["id"]: item for item in response.get_json()["items"]}


def _queued_reply(deliver, db_session, client, headers) -> str:
    deliver(inbound(text("Hi")))
    response = client.post(f"/api/v1/conversations/{the_conversation(db_session).id}/messages", json=text("Hello"),
                           headers=headers)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def _sent(deliver, db_session, client, headers, wamid) -> str:
    message_id = _queued_reply(deliver, db_session, client, headers)
    assert sending.claim_send(db_session, message_id=db_session.get(Message, message_id).id)
    send_outcomes.record_sent(db_session, message_id=db_session.get(Message, message_id).id, wamid=wamid)
    return message_id


def test_forwarded_messages_show_their_flags_and_are_not_replies(deliver, db_session, client, admin_headers):
    deliver(inbound({**text("plain")},
                    {**text("forwarded once"), "context": {"forwarded": True}},
                    {**text("forwarded a lot"), "context": {"frequently_forwarded": True}},
                    # Not what Meta sends, but a forward is never taken for a reply whatever its context holds.
                    {**text("odd forward"), "context": {"forwarded": True, "from": "1555", "id": "wamid.someone"}}))
    stored = inbound_messages(db_session)
    assert [(m.content["body"], m.forwarded, m.frequently_forwarded, m.context_wamid) for m in stored] == [
        ("plain", False, False, None),
        ("forwarded once", True, False, None),
        ("forwarded a lot", False, True, None),
        ("odd forward", True, False, None),
    ]
    listed = _listed(client, admin_headers, the_conversation(db_session))
    assert [(listed[str(m.id)]["forwarded"], listed[str(m.id)]["frequently_forwarded"],
             listed[str(m.id)]["context_wamid"]) for m in stored] == [
        (False, False, None), (True, False, None), (False, True, None), (True, False, None)]


def test_a_real_reply_still_links_to_our_message(deliver, db_session, client, admin_headers):
    ours = _sent(deliver, db_session, client, admin_headers, "wamid.ours-1")
    deliver(inbound({**text("answering you"),
                     "context": {"from": NUMBER["display_phone_number"], "id": "wamid.ours-1"}}))
    reply = inbound_messages(db_session)[-1]
    assert (reply.context_wamid, reply.forwarded, reply.frequently_forwarded) == ("wamid.ours-1", False, False)
    assert db_session.get(Message, ours).wamid == reply.context_wamid
    shown = _listed(client, admin_headers, the_conversation(db_session))[str(reply.id)]
    assert (shown["context_wamid"], shown["forwarded"], shown["frequently_forwarded"]) == ("wamid.ours-1", False, False)


def test_a_status_stores_pricing_and_conversation_and_a_later_status_without_them_keeps_them(
        deliver, db_session, client, admin_headers):
    message_id = _sent(deliver, db_session, client, admin_headers, "wamid.priced")
    assert db_session.get(Message, message_id).pricing is None  # nothing before Meta says so
    deliver(statuses({"id": "wamid.priced", "status": "sent", "pricing": PRICING, "conversation": CONVERSATION}))
    expected_pricing = dict(PRICING)
    expected_conversation = {"id": "c1f3", "origin_type": "marketing", "expires_at": EXPIRES_AT}
    message = db_session.get(Message, message_id)
    assert (message.pricing, message.meta_conversation) == (expected_pricing, expected_conversation)
    shown = _listed(client, admin_headers, the_conversation(db_session))[message_id]
    assert (shown["pricing"], shown["meta_conversation"]) == (expected_pricing, expected_conversation)

    deliver(statuses({"id": "wamid.priced", "status": "read"}))  # read statuses usually carry neither
    message = db_session.get(Message, message_id)
    assert message.status == MessageStatus.read
    assert (message.pricing, message.meta_conversation) == (expected_pricing, expected_conversation)
    shown = _listed(client, admin_headers, the_conversation(db_session))[message_id]
    assert (shown["pricing"], shown["meta_conversation"]) == (expected_pricing, expected_conversation)


def test_a_status_with_newer_objects_replaces_them_keeping_the_first_statuses_expiry(
        deliver, db_session, client, admin_headers):
    message_id = _sent(deliver, db_session, client, admin_headers, "wamid.repriced")
    deliver(statuses({"id": "wamid.repriced", "status": "sent", "pricing": PRICING, "conversation": CONVERSATION}))
    newer = {"pricing_model": "PMP", "category": "utility", "type": "free_customer_service"}  # no `billable`
    deliver(statuses({"id": "wamid.repriced", "status": "delivered", "pricing": newer,
                      "conversation": {"id": "c1f3", "origin": {"type": "utility"}}}))  # no expiration_timestamp
    message = db_session.get(Message, message_id)
    assert message.pricing == {"billable": None, **newer}
    assert message.meta_conversation == {"id": "c1f3", "origin_type": "utility", "expires_at": EXPIRES_AT}
    deliver(statuses({"id": "wamid.repriced", "status": "read",
                      "conversation": {"id": "c9", "origin": {"type": "service"}}}))  # another conversation
    assert db_session.get(Message, message_id).meta_conversation == {"id": "c9", "origin_type": "service",
                                                                     "expires_at": None}


def test_a_late_status_still_records_the_pricing_it_carries(deliver, db_session, client, admin_headers):
    message_id = _sent(deliver, db_session, client, admin_headers, "wamid.late")
    deliver(statuses({"id": "wamid.late", "status": "read"}))  # read before delivered, as Meta may send them
    deliver(statuses({"id": "wamid.late", "status": "delivered", "pricing": PRICING, "conversation": CONVERSATION}))
    message = db_session.get(Message, message_id)
    assert message.status == MessageStatus.read  # the status never goes back
    assert message.pricing == PRICING and message.meta_conversation["id"] == "c1f3"


def test_a_status_matched_by_our_callback_data_stores_its_pricing(deliver, db_session, client, admin_headers):
    message_id = _queued_reply(deliver, db_session, client, admin_headers)
    assert sending.claim_send(db_session, message_id=db_session.get(Message, message_id).id)
    send_outcomes.mark_unknown(db_session, message_id=db_session.get(Message, message_id).id, reason="read timeout")
    deliver(statuses({"id": "wamid.by-callback", "status": "sent", "pricing": PRICING, "conversation": CONVERSATION,
                      "biz_opaque_callback_data": messages.callback_data(message_id)}))
    message = db_session.get(Message, message_id)
    assert (message.status, message.wamid) == (MessageStatus.sent, "wamid.by-callback")
    assert message.pricing == PRICING and message.meta_conversation["expires_at"] == EXPIRES_AT


def test_inbound_messages_carry_no_pricing(deliver, db_session, client, admin_headers):
    deliver(inbound(text("Hi")))
    [message] = inbound_messages(db_session)
    assert message.direction == Direction.inbound
    shown = _listed(client, admin_headers, the_conversation(db_session))[str(message.id)]
    assert (shown["pricing"], shown["meta_conversation"]) == (None, None)
