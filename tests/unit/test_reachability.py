"""Meta's 131026 (message undeliverable): the contact is unreachable on that number for a while, and marketing
eligibility says so, at request time and at send time."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from shared.models import ConsentState, Contact, Message, MessageStatus, MessageTemplate
from shared.models.base import utcnow
from shared.services import sending
from shared.settings import get_settings
from tests.unit.test_conversations import deliver, inbound, number, statuses, text, the_conversation  # noqa: F401
from tests.unit.test_whatsapp_channel import NUMBER


def _templates(db_session, organization) -> dict[str, MessageTemplate]:
    made = {}
    for name, category in (("spring_sale", "MARKETING"), ("order_update", "UTILITY")):
        made[name] = MessageTemplate(organization_id=organization.id, waba_id=NUMBER["waba_id"], name=name,
                                     language="en_US", category=category, status="APPROVED",
                                     components=[{"type": "BODY", "text": "Hello"}])
        db_session.add(made[name])
    db_session.flush()
    return made


def _send_template(client, conversation, headers, template):
    return client.post(f"/api/v1/conversations/{conversation.id}/messages",
                       json={"type": "template", "template_id": str(template.id)}, headers=headers)


def _opted_in(db_session) -> None:
    contact = db_session.execute(select(Contact)).scalar_one()
    contact.marketing_consent = ConsentState.opted_in
    db_session.flush()


def test_a_131026_status_holds_marketing_to_that_contact_on_that_number(deliver, db_session, client, admin_headers,
                                                                        organization):
    deliver(inbound(text("Hi")))
    _opted_in(db_session)
    conversation = the_conversation(db_session)
    templates = _templates(db_session, organization)
    first = _send_template(client, conversation, admin_headers, templates["spring_sale"])
    assert first.status_code == 202, first.get_json()
    message = db_session.get(Message, first.get_json()["id"])
    message.status, message.wamid = MessageStatus.sent, "wamid.undeliverable-1"
    db_session.flush()

    deliver(statuses({"id": "wamid.undeliverable-1", "status": "failed", "errors": [
        {"code": 131026, "title": "Message undeliverable", "error_data": {"details": "Unable to deliver"}}]}))

    db_session.expire_all()
    held_until = the_conversation(db_session).unreachable_until
    hours = get_settings().unreachable_hours
    assert held_until is not None and abs(held_until - (utcnow() + dt.timedelta(hours=hours))) < dt.timedelta(minutes=5)
    refused = _send_template(client, conversation, admin_headers, templates["spring_sale"])
    assert (refused.status_code, refused.get_json()["code"]) == (409, "contact_ineligible")
    assert refused.get_json()["details"]["reason"] == "unreachable"
    assert _send_template(client, conversation, admin_headers, templates["order_update"]).status_code == 202

    the_conversation(db_session).unreachable_until = utcnow() - dt.timedelta(seconds=1)  # the hold ran out
    db_session.flush()
    assert _send_template(client, conversation, admin_headers, templates["spring_sale"]).status_code == 202


def test_a_marketing_message_queued_before_the_131026_is_not_sent_after_it(deliver, db_session, client,
                                                                           admin_headers, organization):
    deliver(inbound(text("Hi")))
    _opted_in(db_session)
    conversation = the_conversation(db_session)
    waiting = _send_template(client, conversation, admin_headers, _templates(db_session, organization)["spring_sale"])
    assert waiting.status_code == 202
    conversation.unreachable_until = utcnow() + dt.timedelta(hours=1)  # Meta's 131026 for another message came in
    db_session.flush()

    assert sending.claim_batch(db_session, number_id=conversation.number_id).items == []
    message = db_session.get(Message, waiting.get_json()["id"])
    assert (message.status, message.error_code) == (MessageStatus.failed, "contact_ineligible")
    assert "131026" in message.error_message


def test_other_failures_leave_the_contact_reachable(deliver, db_session, client, admin_headers, organization):
    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    reply = client.post(f"/api/v1/conversations/{conversation.id}/messages", json=text("Thanks"),
                        headers=admin_headers)
    message = db_session.get(Message, reply.get_json()["id"])
    message.status, message.wamid = MessageStatus.sent, "wamid.other-failure"
    db_session.flush()
    deliver(statuses({"id": "wamid.other-failure", "status": "failed", "errors": [{"code": 131047}]}))
    db_session.expire_all()
    assert db_session.get(Message, message.id).status == MessageStatus.failed
    assert the_conversation(db_session).unreachable_until is None
