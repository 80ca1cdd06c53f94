"""A customer's reaction attaches to the message it reacts to: shown on it, removed by an empty emoji, never a turn."""

from __future__ import annotations

from sqlalchemy import func, select

from shared.models import Direction, Message
from shared.models.base import utcnow
from tests.unit.test_conversations import agent, deliver, inbound, number, sent_reply, text, the_conversation  # noqa: F401


def react(to, emoji, seconds_ago=0):
    return {"type": "reaction", "timestamp": str(int(utcnow().timestamp()) - seconds_ago),
            "reaction": {"message_id": to, "emoji": emoji}}


def test_a_reaction_shows_on_our_message_and_is_no_new_turn(deliver, db_session, client, admin_headers, agent):
    deliver(inbound(text("Where is my order?")))
    ours = sent_reply(db_session, client, admin_headers, "wamid.ours-1", body="It left today")
    conversation = the_conversation(db_session)
    unread, counted, assigned = conversation.unread_count, conversation.messages_in_count, conversation.assigned_agent_id
    inbound_before = db_session.execute(select(func.count()).select_from(Message).where(
        Message.direction == Direction.inbound)).scalar_one()

    deliver(inbound(react("wamid.ours-1", "👍")))

    db_session.expire_all()
    assert db_session.get(Message, ours.id).reaction["emoji"] == "👍"
    conversation = the_conversation(db_session)
    assert (conversation.unread_count, conversation.messages_in_count, conversation.assigned_agent_id) == (
        unread, counted, assigned)
    assert db_session.execute(select(func.count()).select_from(Message).where(
        Message.direction == Direction.inbound)).scalar_one() == inbound_before
    shown = client.get(f"/api/v1/messages/{ours.id}", headers=admin_headers).get_json()
    assert shown["reaction"]["emoji"] == "👍"

    deliver(inbound(react("wamid.ours-1", "❤️")))
    deliver(inbound(react("wamid.ours-1", "😡", seconds_ago=60)))  # an older one, redelivered late
    db_session.expire_all()
    assert db_session.get(Message, ours.id).reaction["emoji"] == "❤️"
    deliver(inbound(react("wamid.ours-1", "")))  # taken back
    db_session.expire_all()
    assert client.get(f"/api/v1/messages/{ours.id}", headers=admin_headers).get_json()["reaction"] is None


def test_a_reaction_to_a_message_we_do_not_have_changes_nothing(deliver, db_session):
    deliver(inbound(text("Hi")))
    deliver(inbound(react("wamid.not-ours", "👍")))
    assert db_session.execute(select(func.count()).select_from(Message)).scalar_one() == 1
