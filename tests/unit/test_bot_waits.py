"""The bots pool's waits, in-process: question timeouts and idle sessions (beat), outside calls and their
results, bursts, agents taking over, and the contact actions a step performs."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from shared.db import unit_of_work
from shared.models import (
    AttributeDefinition,
    AttributeType,
    BotSession,
    BotSessionStatus,
    Chatbot,
    ChatbotVersion,
    ConsentEvent,
    Contact,
    Message,
    WhatsAppNumber,
)
from shared.models.base import utcnow
from shared.queueing.names import BOT_CALL, BOT_STEP
from shared.services import bot_runtime
from shared.settings import get_settings, use_settings
from tests.factories import make_user
from tests.unit.flow_builders import bot, edge, node, six_node_bot
from tests.unit.test_bot_runtime import body_of, bot_messages, button, chatbot, run_steps, the_session  # noqa: F401
from tests.unit.test_conversations import deliver, inbound, number, text, the_conversation  # noqa: F401
from workers.tasks import bots

PAST = dt.timedelta(seconds=5)


def publish(db_session, organization, number, content) -> Chatbot:
    """`content` published as version 1 of an active chatbot, the number's default."""
    chatbot_row = Chatbot(organization_id=organization.id, name="Waits", is_active=True, live_version=1)
    db_session.add(chatbot_row)
    db_session.flush()
    db_session.add(ChatbotVersion(organization_id=organization.id, chatbot_id=chatbot_row.id, number=1,
                                  content={**content, "chatbot_id": str(chatbot_row.id)}, published_at=utcnow()))
    db_session.get(WhatsAppNumber, number["id"]).default_chatbot_id = chatbot_row.id
    db_session.flush()
    return chatbot_row


def make_due(db_session, *, deadline_too: bool = True) -> dict[str, str]:
    """Let the waiting session's time pass: its due time (and its question's deadline) is now behind us."""
    session_row = db_session.execute(select(BotSession).where(BotSession.status == BotSessionStatus.waiting)
                                     .order_by(BotSession.created_at.desc()).limit(1)).scalar_one()
    past = utcnow() - PAST
    state = dict(session_row.state)
    if deadline_too and (state.get("wait") or {}).get("deadline"):
        state["wait"] = {**state["wait"], "deadline": past.isoformat()}
    db_session.execute(update(BotSession).where(BotSession.id == session_row.id).values(due_at=past, state=state))
    db_session.commit()
    db_session.expire_all()
    return {"org_id": str(session_row.organization_id), "conversation_id": str(session_row.conversation_id),
            "session_id": str(session_row.id)}


def sweep() -> list[dict[str, str]]:
    with unit_of_work() as session:
        return bot_runtime.due_sessions(session)


def test_a_question_timeout_takes_its_branch_once_however_often_beat_fires_it(deliver, db_session, chatbot,
                                                                              run_steps):
    deliver(inbound(text("plans")))
    run_steps()
    session_row = the_session(db_session)
    assert session_row.due_at == dt.datetime.fromisoformat(session_row.state["wait"]["deadline"])
    assert sweep() == []  # not due yet: the question waits 600 s
    due = make_due(db_session)
    assert sweep() == [due]
    assert bots.fire_due(**due) == "timed_out"
    assert bots.fire_due(**due) == "session_over"  # beat published it twice: the branch is taken once
    db_session.expire_all()
    assert [body_of(m) for m in bot_messages(db_session)][-1] == "No answer, talk soon."
    session_row = the_session(db_session)
    assert (session_row.status, session_row.end_reason, session_row.timeouts) == (
        BotSessionStatus.ended, "completed", 1)
    assert sweep() == []


def test_an_answer_before_the_deadline_leaves_nothing_for_beat(deliver, db_session, chatbot, run_steps):
    deliver(inbound(text("plans")))
    run_steps()
    due = make_due(db_session, deadline_too=False)  # published for a wait the customer then answered
    deliver(inbound(button("free", "Free")))
    run_steps()
    assert bots.fire_due(**due) == "session_over"
    db_session.expire_all()
    assert "No answer, talk soon." not in [body_of(m) for m in bot_messages(db_session)]


def test_a_customer_silent_on_a_question_without_timeout_ends_as_expired_and_the_bot_starts_again(
        deliver, db_session, organization, number, run_steps):
    content = six_node_bot()
    ask = next(n for n in content["flows"]["main"]["nodes"] if n["id"] == "ask")
    del ask["data"]["timeout_seconds"]
    content["flows"]["main"]["edges"] = [e for e in content["flows"]["main"]["edges"] if e["sourceHandle"] != "timeout"]
    publish(db_session, organization, number, content)
    deliver(inbound(text("plans")))
    run_steps()
    session_row = the_session(db_session)
    idle = dt.timedelta(seconds=get_settings().bot_idle_expiry_seconds)
    assert abs(session_row.due_at - (utcnow() + idle)) < dt.timedelta(minutes=1)
    assert bots.fire_due(**make_due(db_session)) == "expired"
    db_session.expire_all()
    assert (the_session(db_session).status, the_session(db_session).end_reason) == (BotSessionStatus.ended, "expired")
    assert the_conversation(db_session).owner.value == "none"
    deliver(inbound(text("plans")))
    assert run_steps() == ["started"]


def api_bot() -> dict:
    return bot(
        [node("start", "start", trigger="keyword", keywords=["order"]),
         node("lookup", "api_call", method="GET", url="https://shop.example/orders/{{system.last_message}}",
              timeout_seconds=3, mappings=[{"path": "$.order.status", "variable": "status"}]),
         node("found", "message", kind="text", text="Your order is {{vars.status}}."),
         node("sorry", "end", message="We could not check your order.")],
        [edge("start", "lookup"), edge("lookup", "found", "success"), edge("lookup", "sorry", "failure")])


def test_an_api_call_is_published_after_the_step_and_its_result_moves_the_session_once(
        deliver, db_session, organization, number, run_steps, published):
    publish(db_session, organization, number, api_bot())
    deliver(inbound(text("order")))
    assert run_steps() == ["started"]
    session_row = the_session(db_session)
    assert session_row.status == BotSessionStatus.waiting and session_row.pending_call["type"] == "call_api"
    assert session_row.pending_call["url"] == "https://shop.example/orders/order"
    assert session_row.pending_call["timeout_seconds"] == 3
    [call] = [kwargs for name, kwargs in published if name == BOT_CALL]
    assert call == {"org_id": str(organization.id), "conversation_id": str(session_row.conversation_id),
                    "session_id": str(session_row.id), "call_id": session_row.state["wait"]["id"]}
    deliver(inbound(text("hello?")))  # the customer writes while the call is out: kept for after it
    assert run_steps() == ["waiting_on_call"]
    event = {"type": "api_result", "call_id": call["call_id"], "ok": True, "status": 200,
             "json": {"order": {"status": "shipped"}}}
    with unit_of_work() as session:
        assert bot_runtime.apply_call_result(session, **{k: call[k] for k in (
            "org_id", "conversation_id", "session_id")}, event=event) == "applied"
    with unit_of_work() as session:  # the same result again (a redelivered task): nothing
        assert bot_runtime.apply_call_result(session, **{k: call[k] for k in (
            "org_id", "conversation_id", "session_id")}, event=event) == "session_over"
    db_session.expire_all()
    assert [body_of(m) for m in bot_messages(db_session)] == ["Your order is shipped."]
    assert the_session(db_session).status == BotSessionStatus.ended
    assert [name for name, _ in published].count(BOT_STEP) >= 3  # the message typed meanwhile is stepped after


def test_a_call_that_never_comes_back_takes_the_failure_branch_when_due(deliver, db_session, organization, number,
                                                                         run_steps, published):
    publish(db_session, organization, number, api_bot())
    deliver(inbound(text("order")))
    run_steps()
    session_row = the_session(db_session)
    grace = get_settings().bot_call_grace_seconds
    assert abs(session_row.due_at - (utcnow() + dt.timedelta(seconds=3 + grace))) < dt.timedelta(seconds=30)
    due = make_due(db_session)
    assert bots.fire_due(**due) == "call_lost"
    [call] = [kwargs for name, kwargs in published if name == BOT_CALL]
    assert bots.call(**call) == "stale"  # the task arrives after all: the session has moved on
    db_session.expire_all()
    assert [body_of(m) for m in bot_messages(db_session)] == ["We could not check your order."]


def test_an_agent_who_takes_the_conversation_stops_the_bot(deliver, db_session, organization, chatbot, run_steps,
                                                           client, admin_headers):
    agent = make_user(db_session, organization, role="agent")
    deliver(inbound(text("plans")))
    run_steps()
    conversation = the_conversation(db_session)
    answer = client.post(f"/api/v1/conversations/{conversation.id}/assign", json={"agent_id": str(agent.id)},
                         headers=admin_headers)
    assert answer.status_code == 200, answer.get_json()
    db_session.expire_all()
    assert (the_session(db_session).status, the_session(db_session).end_reason) == (BotSessionStatus.ended, "agent")
    replies = len(bot_messages(db_session))
    deliver(inbound(button("pro", "Pro")))
    assert run_steps() == []
    assert len(bot_messages(db_session)) == replies
    assert sweep() == []  # its question's timeout will not fire either


@pytest.fixture
def burst_window(settings):
    use_settings(settings.with_overrides(bot_burst_seconds=30.0))
    yield
    use_settings(settings)


def test_a_step_waits_for_the_customer_to_stop_typing_then_answers_the_burst_once(
        deliver, db_session, chatbot, run_steps, published, burst_window):
    deliver(inbound(text("plans")))
    assert run_steps() == ["settling"]  # the customer may still be typing: the step is published again, later
    assert bot_messages(db_session) == []
    assert [name for name, _ in published].count(BOT_STEP) == 2
    deliver(inbound(text("I mean")))
    deliver(inbound(text("which plans are there")))
    db_session.execute(update(Message).values(created_at=utcnow() - dt.timedelta(seconds=60)))  # quiet since
    db_session.commit()
    outcomes = run_steps()
    assert outcomes.count("started") == 1 and set(outcomes) <= {"started", "nothing_new"}
    assert [body_of(m) for m in bot_messages(db_session)] == ["Hi Sheena!", "Which plan?"]  # one answer, once


def test_a_burst_starts_the_bot_on_its_keyword_even_when_a_later_line_says_something_else(
        deliver, db_session, chatbot, run_steps):
    deliver(inbound(text("plans"), text("for my shop please")))
    assert run_steps() == ["started"]
    assert [body_of(m) for m in bot_messages(db_session)][-1] == "Which plan?"


def test_actions_record_consent_and_typed_attributes(deliver, db_session, organization, number, run_steps):
    db_session.add(AttributeDefinition(organization_id=organization.id, key="shoe_size", label="Shoe size",
                                       type=AttributeType.number))
    db_session.flush()
    publish(db_session, organization, number, bot(
        [node("start", "start", trigger="keyword", keywords=["stop offers"]),
         node("act", "action", actions=[{"type": "opt_out", "category": "marketing"},
                                        {"type": "set_attribute", "name": "shoe_size", "value": "42"},
                                        {"type": "set_attribute", "name": "undefined_one", "value": "x"}]),
         node("end", "end", message="Done.")],
        [edge("start", "act"), edge("act", "end")]))
    deliver(inbound(text("Stop offers")))
    assert run_steps() == ["started"]
    contact = db_session.execute(select(Contact)).scalar_one()
    assert contact.marketing_consent.value == "opted_out"
    assert contact.custom_attributes == {"shoe_size": 42}
    [event] = db_session.execute(select(ConsentEvent)).scalars().all()
    assert (event.action.value, event.scope.value, event.source.value) == ("opt_out", "marketing", "flow")


def test_stats_count_a_chatbots_sessions_and_where_they_ended_per_node(deliver, db_session, organization, chatbot,
                                                                       run_steps, client, admin_headers):
    deliver(inbound(text("plans")))  # completes: pro → tag → thanks → end
    run_steps()
    deliver(inbound(button("pro", "Pro")))
    run_steps()
    deliver(inbound(text("plans"), wa_id="15550001111"))  # times out on the question → bye
    run_steps()
    bots.fire_due(**make_due(db_session))
    deliver(inbound(text("plans"), wa_id="15550002222"))  # still waiting on the question
    run_steps()
    answer = client.get(f"/api/v1/chatbots/{chatbot.id}/stats", headers=admin_headers)
    assert answer.status_code == 200, answer.get_json()
    stats = answer.get_json()
    period = dt.datetime.fromisoformat(stats["to"]) - dt.datetime.fromisoformat(stats["from"])
    assert period == dt.timedelta(days=7)  # the default period: the last 7 days
    assert stats["sessions"] == {"started": 3, "completed": 2, "handed_off": 0, "timed_out": 1, "dropped": 0,
                                 "active": 1}
    nodes = {node["node_id"]: node for node in stats["nodes"]}
    assert nodes["ask"]["reached"] == 3 and nodes["ask"]["timed_out"] == 1 and nodes["ask"]["active"] == 1
    assert nodes["tag"]["reached"] == 1 and nodes["end"]["completed"] == 1 and nodes["bye"]["completed"] == 1
    assert nodes["ask"]["type"] == "question"
    later = client.get(f"/api/v1/chatbots/{chatbot.id}/stats", query_string={
        "from": (utcnow() + dt.timedelta(hours=1)).isoformat(), "to": (utcnow() + dt.timedelta(hours=2)).isoformat()},
        headers=admin_headers)
    assert later.get_json()["sessions"]["started"] == 0
    backwards = client.get(f"/api/v1/chatbots/{chatbot.id}/stats", query_string={
        "from": utcnow().isoformat(), "to": (utcnow() - dt.timedelta(days=1)).isoformat()}, headers=admin_headers)
    assert backwards.status_code == 422 and backwards.get_json()["code"] == "invalid_period"
