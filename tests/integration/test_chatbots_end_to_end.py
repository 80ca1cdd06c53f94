"""Chatbots end to end through the Cloud API sandbox (issue 11's acceptance): customers talk to a published bot.

Real web (the sandbox posts its signed webhooks to it; chatbots are built, published and rolled back through
its API), a real worker and beat on the real broker: the webhooks pool stores the customer's message and hands
the conversation to `bots.step`, the bots pool runs the session and queues its replies, the sends pool delivers
them to the sandbox, where the tests read what the customer received.

Question timeouts, bursts, api_call and ai_prompt have tests of their own.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import requests
from sqlalchemy import func, select

from shared.db import unit_of_work
from shared.models import (
    BotSession,
    BotSessionStatus,
    Contact,
    Direction,
    Message,
    SenderType,
    WebhookEvent,
    WebhookEventStatus,
)
from shared.queueing.names import BOT_STEP
from shared.queueing.publish import publish_now
from tests.integration.conftest import wait_for
from tests.integration.test_conversations_end_to_end import NUMBER, customer, inbox  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

SLOW = 60  # seconds: the CI machine is slow; every wait is for a final state, never a timing


# -- building a chatbot through the API ---------------------------------------------------------------------

def node(node_id, node_type, **data):
    return {"id": node_id, "type": node_type, "position": {"x": 0, "y": 0}, "data": data}


def edge(source, target, handle=None):
    return {"id": f"{source}-{target}-{handle}", "source": source, "target": target, "sourceHandle": handle}


def ok(response, status=200):
    assert response.status_code == status, response.text
    return response.json()


class Bot:
    """A chatbot of the inbox's organization, built and published through the web API."""

    def __init__(self, inbox, graph, *, name="Plans bot"):
        self.inbox = inbox
        self.chatbot = ok(inbox.api("POST", "/chatbots", inbox.admin, json={"name": name}), 201)
        self.url = f"/chatbots/{self.chatbot['id']}"
        self.flow = ok(inbox.api("POST", f"{self.url}/flows", inbox.admin, json={"name": "Main"}), 201)
        self.flow_url = f"{self.url}/flows/{self.flow['id']}"
        ok(inbox.api("PUT", f"{self.flow_url}/graph", inbox.admin, json=graph))

    def publish(self) -> int:
        return ok(self.inbox.api("POST", f"{self.url}/publish", self.inbox.admin), 201)["number"]

    def go_live(self) -> Bot:
        """Published, active, and the default chatbot of the inbox's number: it answers first from now on."""
        self.publish()
        assert ok(self.inbox.api("POST", f"{self.url}/activate", self.inbox.admin))["is_active"] is True
        number = ok(self.inbox.api("PATCH", f"/numbers/{self.inbox.number_id}", self.inbox.admin,
                                   json={"default_chatbot_id": self.chatbot["id"]}))
        assert number["default_chatbot_id"] == self.chatbot["id"]
        return self

    def edit_node(self, node_id, **data):
        ok(self.inbox.api("PATCH", f"{self.flow_url}/nodes/{node_id}", self.inbox.admin, json={"data": data}))

    def rollback(self, version):
        assert ok(self.inbox.api("POST", f"{self.url}/rollback", self.inbox.admin,
                                 json={"version": version}))["live_version"] == version


# -- what the customer received, and what PyTake stored -----------------------------------------------------

def text_of(request: dict) -> str:
    """The words of a message as the customer reads them (an interactive message by its body)."""
    if request["type"] == "text":
        return request["text"]["body"]
    if request["type"] == "interactive":
        return request["interactive"]["body"]["text"]
    return f"<{request['type']}>"


def received(inbox, wa_id) -> list[str]:
    """What the customer has received at the sandbox, in the order it was accepted."""
    return [text_of(message["request"]) for message in inbox.sent_to(wa_id)]


def receives(inbox, wa_id, count: int, what: str) -> list[str]:
    """Wait until the customer has received `count` messages (no more are expected); what they were."""
    return wait_for(lambda: (got := received(inbox, wa_id)) and len(got) >= count and got, timeout=SLOW,
                    interval=0.2, what=f"{what} (customer {wa_id} has {received(inbox, wa_id)})")


def describe(conversation) -> str:
    return (f"owner={conversation.owner.value} assigned_agent_id={conversation.assigned_agent_id} "
            f"waiting_since={conversation.waiting_since} status={conversation.status.value}")


def tags_of(wa_id) -> list[str]:
    with unit_of_work() as session:
        contact = session.execute(select(Contact).where(Contact.wa_id == wa_id)).scalar_one()
        return [tag.name for tag in contact.tags]


def bot_session_of(conversation_id) -> BotSession | None:
    """The conversation's newest bot session."""
    with unit_of_work() as session:
        return session.execute(select(BotSession).where(BotSession.conversation_id == conversation_id)
                               .order_by(BotSession.created_at.desc()).limit(1)).scalar_one_or_none()


def bot_replies(inbox, conversation_id) -> list[Message]:
    return [m for m in inbox.messages_of(conversation_id, Direction.outbound) if m.sender_type == SenderType.bot]


def stored_text(message: Message) -> str:
    content = message.content or {}
    return content["body"] if message.type == "text" else content["body"]["text"]


def answered(conversation_id, delivered: dict) -> BotSession:
    """Wait until the bot has applied the inbound message the sandbox delivered (`customer_says`' answer)."""
    [wamid] = delivered["message_ids"]

    def applied():
        with unit_of_work() as session:
            message_id = session.execute(select(Message.id).where(Message.wamid == wamid)).scalar_one_or_none()
            bot_session = session.execute(
                select(BotSession).where(BotSession.conversation_id == conversation_id)
                .order_by(BotSession.created_at.desc()).limit(1)).scalar_one_or_none()
        return message_id is not None and bot_session is not None and bot_session.last_message_id == message_id \
            and bot_session

    return wait_for(applied, timeout=SLOW, interval=0.2, what=f"the bot to apply {wamid}")


def redeliver(inbox, delivered: dict) -> None:
    """Meta sends the same webhook again, in other bytes (its batching differs): the same wamids. Returns once
    PyTake has processed the redelivery."""
    again = json.dumps(delivered["webhook"], separators=(", ", ": ")).encode()
    signature = "sha256=" + hmac.new(NUMBER["app_secret"].encode(), again, hashlib.sha256).hexdigest()
    response = requests.post(f"{inbox.web}/api/v1/webhooks/whatsapp", data=again, timeout=10,
                             headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature})
    assert response.status_code == 200, response.text
    digest = hashlib.sha256(again).hexdigest()

    def processed():
        with unit_of_work() as session:
            return session.execute(select(WebhookEvent.status).where(WebhookEvent.body_sha256 == digest)
                                   ).scalar_one_or_none() == WebhookEventStatus.processed

    wait_for(processed, timeout=SLOW, interval=0.2, what="the redelivered webhook to be processed")


# -- the flows ----------------------------------------------------------------------------------------------

def plans_graph():
    """keyword "plans" → message → question (buttons) → condition on the answer → pro: tag, then a handoff to
    the queue; else: a thank-you naming the plan, then the end.

    Each button's title is the OTHER button's id: an answer taken by title would take the other branch."""
    return {
        "nodes": [
            node("start", "start", trigger="keyword", keywords=["plans"]),
            node("hello", "message", kind="text", text="Welcome to Acme!"),
            node("ask", "question", text="Which plan?", answer_type="choice", variable="plan",
                 buttons=[{"id": "pro", "title": "free"}, {"id": "free", "title": "pro"}]),
            node("check", "condition", branches=[{"id": "is_pro", "expression": "vars.plan == 'pro'"}]),
            node("tag", "action", actions=[{"type": "tag", "tag": "pro-lead"}]),
            node("agent", "handoff", department_id=None, message="Connecting you to sales about {{vars.plan}}."),
            node("thanks", "message", kind="text", text="Thanks, {{vars.plan}} it is."),
            node("end", "end"),
        ],
        "edges": [edge("start", "hello"), edge("hello", "ask"), edge("ask", "check"),
                  edge("check", "tag", "is_pro"), edge("check", "thanks", "else"), edge("tag", "agent"),
                  edge("thanks", "end")],
    }


def seats_graph(bye="Bye!"):
    """keyword "seats" → "How many seats?" (a number, one retry) → "Got N seats." → an end saying `bye`;
    past the retry limit: "Let's talk instead." and the end."""
    return {
        "nodes": [
            node("start", "start", trigger="keyword", keywords=["seats"]),
            node("ask", "question", text="How many seats?", answer_type="number", variable="seats",
                 retry_message="Please type a number, like 3.", retry_limit=1),
            node("got", "message", kind="text", text="Got {{vars.seats}} seats."),
            node("giveup", "message", kind="text", text="Let's talk instead."),
            node("end", "end", message=bye),
        ],
        "edges": [edge("start", "ask"), edge("ask", "got"), edge("ask", "giveup", "retry_limit"),
                  edge("got", "end"), edge("giveup", "end")],
    }


def two_questions_graph():
    """keyword "plans" → "Which plan?" (buttons) → "How many seats?" (a number) → "N seats of PLAN, thanks."

    No retries: a message applied twice reaches the next question as an invalid answer, and the session ends
    at "Let's talk instead." (its reply may even be suppressed by the per-message send key, but the session is
    over: the customer's next answer gets no bot reply)."""
    return {
        "nodes": [
            node("start", "start", trigger="keyword", keywords=["plans"]),
            node("plan", "question", text="Which plan?", answer_type="choice", variable="plan",
                 buttons=[{"id": "pro", "title": "Pro"}, {"id": "free", "title": "Free"}], retry_limit=0),
            node("seats", "question", text="How many seats?", answer_type="number", variable="seats", retry_limit=0),
            node("done", "end", message="{{vars.seats}} seats of {{vars.plan}}, thanks."),
            node("giveup", "end", message="Let's talk instead."),
        ],
        "edges": [edge("start", "plan"), edge("plan", "seats"), edge("seats", "done"),
                  edge("plan", "giveup", "retry_limit"), edge("seats", "giveup", "retry_limit")],
    }


# -- the tests ----------------------------------------------------------------------------------------------

def test_a_keyword_starts_the_flow_a_clicked_button_branches_by_id_and_the_pro_customer_is_tagged_and_handed_off(
        inbox):
    Bot(inbox, plans_graph()).go_live()
    pro, free = customer(), customer()

    inbox.customer_says(pro, "Plans")
    assert receives(inbox, pro, 2, "the welcome and the question") == ["Welcome to Acme!", "Which plan?"]
    [question] = [m["request"] for m in inbox.sent_to(pro) if m["type"] == "interactive"]
    assert question["interactive"]["type"] == "button"
    assert [(b["reply"]["id"], b["reply"]["title"]) for b in question["interactive"]["action"]["buttons"]] == [
        ("pro", "free"), ("free", "pro")]
    conversation = inbox.conversation_of(pro)
    assert conversation.owner.value == "bot" and conversation.assigned_agent_id is None  # the bot answers first

    inbox.customer_clicks(pro, "pro", "free")  # the button titled "free" is the "pro" one
    assert receives(inbox, pro, 3, "the handoff message") == [
        "Welcome to Acme!", "Which plan?", "Connecting you to sales about pro."]
    conversation = wait_for(lambda: (c := inbox.conversation_of(pro)).assigned_agent_id and c, timeout=SLOW,
                            what="the automatic assignment after the handoff")
    assert (conversation.assigned_agent_id, conversation.owner.value) == (inbox.agent.id, "agent")
    assert tags_of(pro) == ["pro-lead"]
    session = bot_session_of(conversation.id)
    assert session.status == BotSessionStatus.handoff and session.version == 1
    inbound = inbox.messages_of(conversation.id, Direction.inbound)
    assert [(m.type, m.content.get("body") or m.content["button_reply"]["id"]) for m in inbound] == [
        ("text", "Plans"), ("interactive", "pro")]
    assert [stored_text(m) for m in bot_replies(inbox, conversation.id)] == [
        "Welcome to Acme!", "Which plan?", "Connecting you to sales about pro."]

    # The other button takes the condition's else branch: no tag, no agent, the bot says goodbye itself.
    inbox.customer_says(free, "plans")
    receives(inbox, free, 2, "the question")
    inbox.customer_clicks(free, "free", "pro")
    assert receives(inbox, free, 3, "the thank-you") == ["Welcome to Acme!", "Which plan?", "Thanks, free it is."]
    free_conversation = inbox.conversation_of(free)
    session = wait_for(lambda: (s := bot_session_of(free_conversation.id)).status == BotSessionStatus.ended and s,
                       timeout=SLOW, what="the free customer's session to end")
    assert tags_of(free) == []
    free_conversation = inbox.conversation_of(free)
    assert free_conversation.assigned_agent_id is None and free_conversation.owner.value == "none"


def test_an_invalid_typed_answer_gets_the_retry_message_then_the_retry_limit_branch(inbox):
    Bot(inbox, seats_graph()).go_live()
    wa_id = customer()

    inbox.customer_says(wa_id, "seats")
    assert receives(inbox, wa_id, 1, "the question") == ["How many seats?"]
    inbox.customer_says(wa_id, "abc")
    assert receives(inbox, wa_id, 2, "the retry message") == ["How many seats?", "Please type a number, like 3."]
    inbox.customer_says(wa_id, "lots")  # past the retry limit (one retry)
    assert receives(inbox, wa_id, 4, "the retry-limit branch") == [
        "How many seats?", "Please type a number, like 3.", "Let's talk instead.", "Bye!"]
    conversation = inbox.conversation_of(wa_id)
    session = wait_for(lambda: (s := bot_session_of(conversation.id)).status == BotSessionStatus.ended and s,
                       timeout=SLOW, what="the session to end")
    assert "seats" not in {**session.state.get("globals", {}), **session.state.get("locals", {})}

    # A valid answer, for contrast, is stored and used.
    other = customer()
    inbox.customer_says(other, "seats")
    receives(inbox, other, 1, "the question")
    inbox.customer_says(other, "12")
    assert receives(inbox, other, 3, "the answer's branch") == ["How many seats?", "Got 12 seats.", "Bye!"]


def test_an_agents_reply_stops_the_bot(inbox):
    Bot(inbox, plans_graph()).go_live()
    wa_id = customer()
    inbox.customer_says(wa_id, "plans")
    receives(inbox, wa_id, 2, "the question")
    conversation = inbox.conversation_of(wa_id)
    assert bot_session_of(conversation.id).status == BotSessionStatus.waiting

    reply = inbox.api("POST", f"/conversations/{conversation.id}/messages", inbox.agent,
                      json={"type": "text", "text": {"body": "Hi, I'm Sam. I can help you choose."}})
    assert reply.status_code == 202, reply.text
    assert receives(inbox, wa_id, 3, "the agent's reply")[-1] == "Hi, I'm Sam. I can help you choose."

    inbox.customer_clicks(wa_id, "pro", "free")  # what the bot waited for, after the agent spoke
    session = wait_for(lambda: (s := bot_session_of(conversation.id)).status == BotSessionStatus.ended and s,
                       timeout=SLOW, what="the bot session to end")
    assert "plan" not in {**session.state.get("globals", {}), **session.state.get("locals", {})}  # not applied
    # The customer's answer is the agent's to read: the conversation is in their hands (or at least queued).
    try:
        conversation = wait_for(lambda: (c := inbox.conversation_of(wa_id)).assigned_agent_id and c, timeout=SLOW,
                                what="the conversation to be the agent's")
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out}: {describe(inbox.conversation_of(wa_id))}") from None
    assert (conversation.assigned_agent_id, conversation.owner.value) == (inbox.agent.id, "agent")

    inbox.customer_says(wa_id, "plans")  # even the keyword does not wake the bot while the agent has it
    wait_for(lambda: len(inbox.messages_of(conversation.id, Direction.inbound)) == 3, timeout=SLOW,
             what="the customer's messages to be stored")
    conversation = inbox.conversation_of(wa_id)  # routed in the transaction that stored the message
    assert (conversation.assigned_agent_id, conversation.owner.value) == (inbox.agent.id, "agent")
    assert received(inbox, wa_id) == ["Welcome to Acme!", "Which plan?", "Hi, I'm Sam. I can help you choose."]
    assert [stored_text(m) for m in bot_replies(inbox, conversation.id)] == ["Welcome to Acme!", "Which plan?"]
    assert tags_of(wa_id) == []
    with unit_of_work() as session:
        assert session.execute(select(func.count()).select_from(BotSession).where(
            BotSession.conversation_id == conversation.id)).scalar_one() == 1  # the keyword started no new one


def test_a_redelivered_webhook_or_step_does_not_advance_the_session(inbox):
    Bot(inbox, two_questions_graph()).go_live()
    wa_id = customer()

    keyword = inbox.customer_says(wa_id, "plans")
    assert receives(inbox, wa_id, 1, "the first question") == ["Which plan?"]
    conversation = inbox.conversation_of(wa_id)
    redeliver(inbox, keyword)  # applied again, "plans" would be an invalid answer to "Which plan?"

    click = inbox.customer_clicks(wa_id, "pro", "Pro")
    assert receives(inbox, wa_id, 2, "the second question") == ["Which plan?", "How many seats?"]
    redeliver(inbox, click)  # applied again, the click would be an invalid answer to "How many seats?"
    session = answered(conversation.id, click)
    for _ in range(2):  # and the bots.step task itself, delivered again by the broker
        publish_now(BOT_STEP, org_id=str(inbox.org_id), conversation_id=str(conversation.id))

    inbox.customer_says(wa_id, "3")  # processed after everything above: one worker, in arrival order
    assert receives(inbox, wa_id, 3, "the last reply") == ["Which plan?", "How many seats?", "3 seats of pro, thanks."]
    conversation_id = conversation.id
    session = wait_for(lambda: (s := bot_session_of(conversation_id)).status == BotSessionStatus.ended and s,
                       timeout=SLOW, what="the session to end")
    assert [m.content.get("body") or m.content["button_reply"]["id"]
            for m in inbox.messages_of(conversation_id, Direction.inbound)] == ["plans", "pro", "3"]
    assert [stored_text(m) for m in bot_replies(inbox, conversation_id)] == [
        "Which plan?", "How many seats?", "3 seats of pro, thanks."]
    assert {**session.state["globals"], **session.state["locals"]} == {"plan": "pro", "seats": 3}
    assert received(inbox, wa_id) == ["Which plan?", "How many seats?", "3 seats of pro, thanks."]


def test_a_session_finishes_on_the_version_it_started_on_and_rollback_brings_the_old_content_back(inbox):
    bot = Bot(inbox, seats_graph(bye="v1 bye")).go_live()
    early = customer()
    inbox.customer_says(early, "seats")
    assert receives(inbox, early, 1, "the question") == ["How many seats?"]

    bot.edit_node("end", message="v2 bye")
    assert bot.publish() == 2  # live now, while the early customer's session waits on version 1

    late = customer()
    inbox.customer_says(late, "seats")
    receives(inbox, late, 1, "the question")
    inbox.customer_says(early, "4")
    inbox.customer_says(late, "5")
    assert receives(inbox, early, 3, "the early customer's goodbye") == ["How many seats?", "Got 4 seats.", "v1 bye"]
    assert receives(inbox, late, 3, "the late customer's goodbye") == ["How many seats?", "Got 5 seats.", "v2 bye"]
    assert bot_session_of(inbox.conversation_of(early).id).version == 1
    assert bot_session_of(inbox.conversation_of(late).id).version == 2

    bot.rollback(1)
    after_rollback = customer()
    inbox.customer_says(after_rollback, "seats")
    receives(inbox, after_rollback, 1, "the question")
    inbox.customer_says(after_rollback, "6")
    assert receives(inbox, after_rollback, 3, "the goodbye after the rollback") == [
        "How many seats?", "Got 6 seats.", "v1 bye"]
    assert bot_session_of(inbox.conversation_of(after_rollback).id).version == 1
    versions = ok(inbox.api("GET", f"{bot.url}/versions", inbox.admin))
    assert [v["number"] for v in versions] == [2, 1]  # a rollback publishes nothing new
