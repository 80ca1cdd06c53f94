"""The bots pool in-process: inbound hands a conversation to its bot, `bots.step` runs inline and advances it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shared.db import unit_of_work
from shared.models import (
    Availability,
    BotSession,
    BotSessionStatus,
    Chatbot,
    ChatbotVersion,
    Contact,
    Direction,
    Message,
    SenderType,
    WhatsAppNumber,
)
from shared.models.base import utcnow
from shared.queueing.names import BOT_STEP
from shared.services import bot_runtime
from tests.factories import make_user
from tests.unit.flow_builders import six_node_bot
from tests.unit.test_conversations import deliver, inbound, number, text, the_conversation  # noqa: F401
from workers.tasks import bots


def button(id_, title):
    return {"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": id_, "title": title}}}


@pytest.fixture
def chatbot(db_session, organization, number):
    """The six-node bot (keyword "plans"), published as version 1, active, the number's default."""
    bot = Chatbot(organization_id=organization.id, name="Plans", is_active=True, live_version=1)
    db_session.add(bot)
    db_session.flush()
    content = {**six_node_bot(), "chatbot_id": str(bot.id)}
    db_session.add(ChatbotVersion(organization_id=organization.id, chatbot_id=bot.id, number=1, content=content,
                                  published_at=utcnow()))
    db_session.get(WhatsAppNumber, number["id"]).default_chatbot_id = bot.id
    db_session.flush()
    return bot


@pytest.fixture
def run_steps(db_session, published):
    """Run every `bots.step` published so far (the task body, inline), once each; the outcomes."""
    done = [0]

    def run():
        outcomes = []
        steps = [kwargs for name, kwargs in published if name == BOT_STEP]
        for kwargs in steps[done[0]:]:
            outcomes.append(bots.step(**kwargs))
        done[0] = len(steps)
        db_session.expire_all()
        return outcomes

    return run


def bot_messages(db_session) -> list[Message]:
    return list(db_session.execute(select(Message).where(
        Message.direction == Direction.outbound, Message.sender_type == SenderType.bot).order_by(Message.sequence)
    ).scalars())


def body_of(message: Message) -> str:
    content = message.content
    return content["body"] if message.type == "text" else content["body"]["text"]


def the_session(db_session) -> BotSession:
    return db_session.execute(select(BotSession)).scalar_one()


def test_a_keyword_starts_the_main_flow_and_the_reply_is_queued_as_a_bot_message(deliver, db_session, chatbot,
                                                                                   run_steps, published):
    deliver(inbound(text("Plans")))
    conversation = the_conversation(db_session)
    assert conversation.owner.value == "bot" and conversation.assigned_agent_id is None
    assert [(name, kwargs) for name, kwargs in published if name == BOT_STEP] == [
        (BOT_STEP, {"org_id": str(conversation.organization_id), "conversation_id": str(conversation.id)})]
    assert run_steps() == ["started"]
    sent = bot_messages(db_session)
    assert [m.status.value for m in sent] == ["queued", "queued"]
    assert body_of(sent[0]).startswith("Hi ") and body_of(sent[1]) == "Which plan?"
    session = the_session(db_session)
    assert (session.status, session.version, session.chatbot_id) == (BotSessionStatus.waiting, 1, chatbot.id)
    assert session.state["node_id"] == "ask"


def test_a_button_answer_by_id_advances_the_session_and_tags_the_contact(deliver, db_session, chatbot, run_steps):
    deliver(inbound(text("plans")))
    run_steps()
    deliver(inbound(button("pro", "Something else entirely")))  # matched by id, never by title
    assert run_steps() == ["stepped"]
    session = the_session(db_session)
    assert session.status == BotSessionStatus.ended and session.state["globals"].get("plan", session.state[
        "locals"].get("plan")) == "pro"
    assert body_of(bot_messages(db_session)[-1]) == "Thanks, pro it is."
    contact = db_session.get(Contact, the_conversation(db_session).contact_id)
    assert "pro-lead" in [tag.name for tag in contact.tags] and contact.lead_score == 10
    assert the_conversation(db_session).owner.value == "none"  # the session ended: the next message starts again


def test_a_redelivered_step_does_not_advance_the_session(deliver, db_session, chatbot, run_steps, published):
    deliver(inbound(text("plans")))
    run_steps()
    deliver(inbound(button("free", "Free")))
    step = [kwargs for name, kwargs in published if name == BOT_STEP][-1]
    assert run_steps() == ["stepped"]
    state, replies = the_session(db_session).state, len(bot_messages(db_session))
    assert bots.step(**step) == "nothing_new"  # the same task, delivered again
    db_session.expire_all()
    assert the_session(db_session).state == state and len(bot_messages(db_session)) == replies


def test_a_burst_is_one_step_over_the_last_message(deliver, db_session, chatbot, run_steps):
    deliver(inbound(text("hello?"), text("plans")))
    assert run_steps() == ["started"]
    messages = db_session.execute(select(Message).where(Message.direction == Direction.inbound)
                                  .order_by(Message.sequence)).scalars().all()
    assert the_session(db_session).last_message_id == messages[-1].id


def test_a_handoff_hands_the_conversation_to_an_online_agent(deliver, db_session, organization, chatbot, run_steps):
    agent = make_user(db_session, organization, role="agent", availability=Availability.online)
    deliver(inbound(text("plans")))
    run_steps()
    deliver(inbound(text("maybe")))  # an invalid answer: the retry message
    run_steps()
    assert body_of(bot_messages(db_session)[-1]) == "Please tap Pro or Free"
    deliver(inbound(text("dunno")))  # past the retry limit: the handoff node
    run_steps()
    conversation = the_conversation(db_session)
    assert (conversation.assigned_agent_id, conversation.owner.value) == (agent.id, "agent")
    assert the_session(db_session).status == BotSessionStatus.handoff
    assert body_of(bot_messages(db_session)[-1]) == "An agent will take it from here."
    deliver(inbound(text("plans")))  # the agent has it now: no more bot steps
    assert run_steps() == []


def test_a_conversation_assigned_to_an_agent_is_not_touched_by_the_bot(deliver, db_session, organization, chatbot,
                                                                        run_steps, published):
    agent = make_user(db_session, organization, role="agent", availability=Availability.online)
    deliver(inbound(text("Hello")))  # no trigger matches: the bot gives it to the agents
    assert run_steps() == ["no_trigger"]
    conversation = the_conversation(db_session)
    assert conversation.assigned_agent_id == agent.id
    deliver(inbound(text("plans")))
    assert run_steps() == []
    assert [name for name, _ in published].count(BOT_STEP) == 1
    assert db_session.execute(select(BotSession)).scalars().all() == [] and bot_messages(db_session) == []
    # and a step that arrives anyway (published before the agent took it) changes nothing
    assert bot_runtime.step_conversation(db_session, org_id=organization.id,
                                         conversation_id=conversation.id) == "agent_owned"


def test_without_an_active_published_default_chatbot_the_agents_path_is_unchanged(deliver, db_session, organization,
                                                                                  chatbot, published):
    chatbot.is_active = False
    db_session.flush()
    agent = make_user(db_session, organization, role="agent", availability=Availability.online)
    deliver(inbound(text("plans")))
    assert the_conversation(db_session).assigned_agent_id == agent.id
    assert BOT_STEP not in [name for name, _ in published]


def test_an_agent_who_replies_stops_the_bot_and_takes_the_conversation(deliver, db_session, client, admin,
                                                                       admin_headers, chatbot, run_steps):
    deliver(inbound(text("plans")))
    run_steps()  # the bot asked "Which plan?"
    conversation = the_conversation(db_session)
    answer = client.post(f"/api/v1/conversations/{conversation.id}/messages",
                         json={"type": "text", "text": {"body": "I can help you choose"}}, headers=admin_headers)
    assert answer.status_code == 202
    replies = len(bot_messages(db_session))
    deliver(inbound(button("pro", "Pro")))
    assert run_steps() == ["agent_replied"]  # the bot does not answer over the agent
    assert len(bot_messages(db_session)) == replies
    assert the_session(db_session).status == BotSessionStatus.ended
    conversation = the_conversation(db_session)
    # whoever answered over the bot has the conversation: the customer's next words reach them
    assert (conversation.owner.value, conversation.assigned_agent_id) == ("agent", admin.id)
    deliver(inbound(text("plans")))
    assert run_steps() == []  # the agent has it: no bot step at all


def test_closing_a_conversation_the_bot_has_lets_the_bot_start_again(deliver, db_session, client, admin_headers,
                                                                     chatbot, run_steps):
    deliver(inbound(text("plans")))
    run_steps()  # the bot asked "Which plan?"
    conversation = the_conversation(db_session)
    closed = client.post(f"/api/v1/conversations/{conversation.id}/close", headers=admin_headers)
    assert closed.status_code == 200 and closed.get_json()["owner"] == "none"
    db_session.expire_all()
    assert (the_session(db_session).status, the_session(db_session).end_reason) == (BotSessionStatus.ended, "closed")
    deliver(inbound(text("plans")))  # a new question after it closed: the bot answers first again
    assert run_steps() == ["started"]
