"""Meta's `system` messages: a customer who changed number stays one contact, with its history; nothing is routed."""

from __future__ import annotations

from sqlalchemy import func, select

from shared import events
from shared.models import (
    LIVE_BOT_SESSION_STATUSES,
    BotSession,
    ConsentEvent,
    ConsentState,
    Contact,
    Conversation,
    ConversationOwner,
    Direction,
    Message,
)
from shared.models.base import utcnow
from tests.unit.test_bot_runtime import button, chatbot, run_steps  # noqa: F401
from tests.unit.test_conversations import agent, deliver, inbound, number, text, the_conversation  # noqa: F401
from tests.unit.test_whatsapp_channel import NUMBER, envelope

OLD, NEW = "16505551234", "16505559876"


def changed_number(old=OLD, new=NEW, at=1749416383):
    """As Meta sends it: `from` is the old number, and the payload has no `contacts`."""
    return envelope("messages", {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": NUMBER["display_phone_number"], "phone_number_id": NUMBER["phone_number_id"]},
        "messages": [{"from": old, "id": "wamid.system-1", "timestamp": str(at), "type": "system",
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


# Meta delivers out of order: the notice may reach us after messages it came before, or before older ones.
CHANGED_AT = int(utcnow().timestamp()) - 3600  # the change, an hour ago by Meta's clock


def sent_at(offset, body, *, wa_id):
    """A text the customer sent `offset` seconds after the change (Meta's time)."""
    payload = inbound(text(body), wa_id=wa_id)
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(CHANGED_AT + offset)
    return payload


def live_contacts(db_session):
    return db_session.execute(select(Contact).order_by(Contact.wa_id)).scalars().all()


def thread(db_session, contact):
    """The contact's conversation, and its messages' texts in the order the inbox lists them."""
    conversation = db_session.execute(select(Conversation).where(Conversation.contact_id == contact.id)).scalar_one()
    bodies = db_session.execute(select(Message.content["body"].astext).where(
        Message.conversation_id == conversation.id, Message.direction == Direction.inbound)
        .order_by(Message.sequence)).scalars().all()
    return conversation, bodies


def test_an_old_number_message_sent_before_the_change_and_delivered_after_the_notice_is_the_changed_contacts(
        deliver, db_session, agent):
    deliver(sent_at(-100, "Is my order ready?", wa_id=OLD))
    deliver(changed_number(at=CHANGED_AT))
    deliver(sent_at(-50, "Hello?", wa_id=OLD))  # sent before the change, delivered late

    [contact] = live_contacts(db_session)
    assert (contact.wa_id, contact.messages_in_count, contact.profile_name) == (NEW, 2, "Sheena")
    conversation, bodies = thread(db_session, contact)
    assert bodies == ["Is my order ready?", "Hello?"]
    assert (conversation.messages_in_count, conversation.unread_count) == (2, 2)
    assert conversation.last_message_preview == "Hello?"  # the later of the two by the customer's clock

    deliver(sent_at(30, "Who is this?", wa_id=OLD))  # after the change the old number may be someone else's
    assert [c.wa_id for c in live_contacts(db_session)] == [OLD, NEW]
    assert thread(db_session, live_contacts(db_session)[1])[1] == ["Is my order ready?", "Hello?"]


def test_a_repeated_notice_leaves_whoever_has_the_old_number_now_alone(deliver, db_session):
    deliver(sent_at(-100, "Hi", wa_id=OLD))
    deliver(changed_number(at=CHANGED_AT))
    deliver(sent_at(30, "I got this number last week", wa_id=OLD))
    deliver(changed_number(at=CHANGED_AT))  # Meta repeats it

    old_owner, changed = live_contacts(db_session)
    assert (old_owner.wa_id, changed.wa_id) == (OLD, NEW)
    assert thread(db_session, old_owner)[1] == ["I got this number last week"]
    assert thread(db_session, changed)[1] == ["Hi"]


def test_a_new_number_message_delivered_before_the_notice_is_merged_into_the_changed_contact(
        deliver, db_session, agent):
    deliver(sent_at(-100, "Is my order ready?", wa_id=OLD))
    deliver(sent_at(50, "New phone, same me", wa_id=NEW))  # opens a contact of its own: the notice is late
    deliver(sent_at(60, "STOP", wa_id=NEW))
    first = db_session.execute(select(Contact).where(Contact.wa_id == OLD)).scalar_one()
    assert len(live_contacts(db_session)) == 2

    deliver(changed_number(at=CHANGED_AT))
    [contact] = live_contacts(db_session)
    assert (contact.id, contact.wa_id, contact.phone_e164) == (first.id, NEW, "+" + NEW)
    assert (contact.messages_in_count, contact.marketing_consent) == (3, ConsentState.opted_out)
    conversation, bodies = thread(db_session, contact)
    assert bodies == ["Is my order ready?", "New phone, same me", "STOP"]
    assert (conversation.messages_in_count, conversation.unread_count) == (3, 3)
    [answer] = db_session.execute(select(Message).where(Message.direction == Direction.outbound)).scalars().all()
    assert (answer.conversation_id, answer.contact_id) == (conversation.id, contact.id)  # the STOP's confirmation
    assert conversation.last_message_preview == answer.content["body"]
    assert conversation.assigned_agent_id == agent.id and conversation.waiting_since is None
    assert db_session.execute(select(func.count()).select_from(Conversation)).scalar_one() == 1
    assert db_session.execute(select(ConsentEvent.contact_id)).scalars().all() == [contact.id]
    assert db_session.execute(select(func.count()).select_from(Message).where(
        Message.contact_id != contact.id)).scalar_one() == 0

    deliver(changed_number(at=CHANGED_AT))  # a repeat changes nothing
    deliver(sent_at(70, "Still me", wa_id=NEW))
    [again] = live_contacts(db_session)
    assert again.id == contact.id and thread(db_session, again)[1][-1] == "Still me"


def test_a_contact_that_wrote_from_the_new_number_before_the_change_is_not_merged(deliver, db_session):
    deliver(sent_at(-100, "I am the old one", wa_id=OLD))
    deliver(sent_at(-50, "I had this number first", wa_id=NEW))  # before the change: someone else
    deliver(changed_number(at=CHANGED_AT))
    old, new = live_contacts(db_session)
    assert (old.wa_id, new.wa_id) == (OLD, NEW)  # left for a person to decide
    assert thread(db_session, old)[1] == ["I am the old one"]
    assert thread(db_session, new)[1] == ["I had this number first"]


def test_a_merged_thread_keeps_one_bot_session_and_feeds_it_nothing_twice(deliver, db_session, chatbot, run_steps):
    deliver(sent_at(-100, "plans", wa_id=OLD))
    deliver(sent_at(50, "plans", wa_id=NEW))  # its own contact and thread, and a bot session of their own
    assert run_steps() == ["started", "started"]

    deliver(changed_number(at=CHANGED_AT))
    [contact] = live_contacts(db_session)
    conversation, bodies = thread(db_session, contact)
    assert bodies == ["plans", "plans"] and conversation.owner == ConversationOwner.bot
    live = db_session.execute(select(BotSession).where(BotSession.status.in_(LIVE_BOT_SESSION_STATUSES))).scalars()
    assert [session.conversation_id for session in live] == [conversation.id]
    assert run_steps() == ["nothing_new"]  # both messages were answered before the merge

    deliver(inbound(button("pro", "Pro"), wa_id=NEW))
    assert run_steps() == ["stepped"]
