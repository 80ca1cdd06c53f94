"""Meta's `system` messages: a customer who changed number stays one contact, with its history; nothing is routed."""

from __future__ import annotations

from sqlalchemy import func, select

from shared import events
from shared.models import Contact, Conversation, Direction, Message
from tests.unit.test_conversations import agent, deliver, inbound, number, text, the_conversation  # noqa: F401
from tests.unit.test_whatsapp_channel import NUMBER, envelope

OLD, NEW = "16505551234", "16505559876"


def changed_number(old=OLD, new=NEW):
    """As Meta sends it: `from` is the old number, and the payload has no `contacts`."""
    return envelope("messages", {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": NUMBER["display_phone_number"], "phone_number_id": NUMBER["phone_number_id"]},
        "messages": [{"from": old, "id": "wamid.system-1", "timestamp": "1749416383", "type": "system",
                      "system": {"body": f"User A changed from {old} to {new}", "wa_id": new,
                                 "type": "user_changed_number"}}],
    })


def test_a_changed_number_keeps_the_contact_and_its_history(deliver, db_session, organization, agent):
    deliver(inbound(text("Hi, it's Sheena"), wa_id=OLD))
    before = the_conversation(db_session)
    contact_id, unread, counted = before.contact_id, before.unread_count, before.messages_in_count

    deliver(changed_number())
    contact = db_session.get(Contact, contact_id)
    assert (contact.wa_id, contact.phone_e164) == (NEW, "+" + NEW)
    conversation = the_conversation(db_session)  # still one conversation: the notice is no turn
    assert (conversation.unread_count, conversation.messages_in_count) == (unread, counted)
    assert db_session.execute(select(func.count()).select_from(Message)).scalar_one() == 1
    trail = events.events_for(org_id=organization.id, subject_type="contact", subject_id=contact_id)
    assert [e["data"]["to_wa_id"] for e in trail if e["event"] == "contacts.number_changed"] == [NEW]

    deliver(inbound(text("New phone, same me"), wa_id=NEW))
    assert db_session.execute(select(func.count()).select_from(Contact)).scalar_one() == 1
    assert db_session.execute(select(func.count()).select_from(Conversation)).scalar_one() == 1
    assert db_session.execute(select(func.count()).select_from(Message).where(
        Message.direction == Direction.inbound, Message.contact_id == contact_id)).scalar_one() == 2


def test_a_change_to_a_number_that_is_another_contact_merges_nobody(deliver, db_session):
    deliver(inbound(text("I am the old one"), wa_id=OLD))
    deliver(inbound(text("I am someone else"), wa_id=NEW))
    deliver(changed_number())
    wa_ids = sorted(db_session.execute(select(Contact.wa_id)).scalars())
    assert wa_ids == sorted([OLD, NEW])  # left for a person to decide


def test_a_notice_about_an_unknown_customer_changes_nothing(deliver, db_session):
    deliver(changed_number())
    assert db_session.execute(select(Contact)).first() is None
