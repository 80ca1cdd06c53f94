"""Chatbots through the sandbox with the real worker and beat: question timeouts fired by beat, a burst
answered once, and `api_call` nodes against local HTTP servers (and a private address refused)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from sqlalchemy import select

from shared.db import unit_of_work
from shared.models import BotSession
from shared.settings import get_settings, use_settings
from tests.integration.conftest import wait_for
from tests.integration.test_conversations_end_to_end import customer, inbox  # noqa: F401
from tests.unit.flow_builders import node

pytestmark = pytest.mark.integration


def edge(source: str, target: str, handle: str | None = None) -> dict:
    return {"id": f"{source}-{target}-{handle or 'next'}", "source": source, "target": target, "sourceHandle": handle}


def go_live(inbox, nodes, edges) -> str:
    """A chatbot with this main flow, published, active, and the default of the inbox's number: its id."""
    bot = inbox.api("POST", "/chatbots", inbox.admin, json={"name": f"Bot {time.monotonic_ns()}"}).json()
    flow = inbox.api("POST", f"/chatbots/{bot['id']}/flows", inbox.admin, json={"name": "Main"}).json()
    graph = inbox.api("PUT", f"/chatbots/{bot['id']}/flows/{flow['id']}/graph", inbox.admin,
                      json={"nodes": nodes, "edges": edges})
    assert graph.status_code == 200, graph.text
    for step in ("publish", "activate"):
        answer = inbox.api("POST", f"/chatbots/{bot['id']}/{step}", inbox.admin)
        assert answer.status_code in (200, 201), answer.text
    number = inbox.api("PATCH", f"/numbers/{inbox.number_id}", inbox.admin, json={"default_chatbot_id": bot["id"]})
    assert number.status_code == 200, number.text
    return bot["id"]


def bot_says(inbox, wa_id) -> list[str]:
    """What the customer received, in order (interactive messages by their body text)."""
    said = []
    for entry in inbox.sent_to(wa_id):
        request = entry["request"]
        said.append(request["text"]["body"] if request["type"] == "text" else request["interactive"]["body"]["text"])
    return said


def sessions_of(inbox) -> list[BotSession]:
    with unit_of_work() as session:
        return list(session.execute(select(BotSession).where(BotSession.organization_id == inbox.org_id)
                                    .order_by(BotSession.created_at)).scalars())


def test_a_question_timeout_takes_its_branch_exactly_once(inbox):
    go_live(inbox, [
        node("start", "start", trigger="keyword", keywords=["survey"]),
        node("ask", "question", text="How was your visit?", answer_type="text", variable="review",
             timeout_seconds=10),
        node("thanks", "end", message="Thanks for the review."),
        node("late", "end", message="No worries, maybe next time."),
    ], [edge("start", "ask"), edge("ask", "thanks"), edge("ask", "late", "timeout")])
    wa_id = customer()
    inbox.customer_says(wa_id, "Survey")
    wait_for(lambda: bot_says(inbox, wa_id) == ["How was your visit?"], timeout=60, what="the question")
    wait_for(lambda: len(bot_says(inbox, wa_id)) == 2, timeout=60, interval=0.5, what="the timeout branch")
    time.sleep(4)  # beat keeps running every second: the branch must not be taken again
    assert bot_says(inbox, wa_id) == ["How was your visit?", "No worries, maybe next time."]
    [session] = sessions_of(inbox)
    assert (session.status.value, session.timeouts, session.end_reason) == ("ended", 1, "completed")


def test_a_burst_of_three_messages_gets_one_answer(inbox):
    go_live(inbox, [
        node("start", "start", trigger="keyword", keywords=["plans"], match="contains"),
        node("hello", "message", kind="text", text="Hi! Here are our plans."),
        node("ask", "question", text="Which one?", answer_type="text", variable="plan"),
    ], [edge("start", "hello"), edge("hello", "ask")])
    wa_id = customer()
    for line in ("hello", "I want to see your plans", "please"):
        inbox.customer_says(wa_id, line)
    wait_for(lambda: len(bot_says(inbox, wa_id)) >= 2, timeout=60, what="the bot's answer")
    time.sleep(3)
    assert bot_says(inbox, wa_id) == ["Hi! Here are our plans.", "Which one?"]  # once, not once per line
    [session] = sessions_of(inbox)
    assert session.state["node_id"] == "ask"  # the session waits on the question: "please" was not its answer


class Shop(BaseHTTPRequestHandler):
    """An order API: /orders/<id> answers JSON; /slow answers after the caller gave up."""

    seen: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        Shop.seen.append(f"{self.server.server_address[0]}{self.path}")
        if self.path.startswith("/slow"):
            time.sleep(4)
        body = json.dumps({"order": {"id": self.path.rsplit("/", 1)[-1], "status": "shipped"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def shop():
    """The order API on 127.0.0.1 (allowed to the workers) and on 127.0.0.2 (a private address they refuse)."""
    Shop.seen = []
    servers = [ThreadingHTTPServer((host, 0), Shop) for host in ("127.0.0.1", "127.0.0.2")]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [f"http://{host}:{server.server_address[1]}" for host, server in zip(("127.0.0.1", "127.0.0.2"), servers)]
    for server in servers:
        server.shutdown()


def order_bot(url: str, timeout_seconds: int = 3) -> tuple[list, list]:
    return [
        node("start", "start", trigger="keyword", keywords=["order"]),
        node("lookup", "api_call", method="GET", url=url, timeout_seconds=timeout_seconds,
             mappings=[{"path": "$.order.status", "variable": "status"}, {"path": "$.order.id", "variable": "id"}]),
        node("found", "end", message="Order {{vars.id}} is {{vars.status}}."),
        node("sorry", "end", message="We could not check your order right now."),
    ], [edge("start", "lookup"), edge("lookup", "found", "success"), edge("lookup", "sorry", "failure")]


def test_an_api_call_maps_the_json_answer_to_variables(inbox, shop):
    allowed, _ = shop
    go_live(inbox, *order_bot(f"{allowed}/orders/A-42"))
    wa_id = customer()
    inbox.customer_says(wa_id, "order")
    wait_for(lambda: bot_says(inbox, wa_id), timeout=60, what="the bot's answer")
    assert bot_says(inbox, wa_id) == ["Order A-42 is shipped."]
    assert Shop.seen == ["127.0.0.1/orders/A-42"]


def test_an_api_call_that_times_out_takes_the_failure_branch(inbox, shop):
    allowed, _ = shop
    go_live(inbox, *order_bot(f"{allowed}/slow/A-42", timeout_seconds=1))
    wa_id = customer()
    started = time.monotonic()
    inbox.customer_says(wa_id, "order")
    wait_for(lambda: bot_says(inbox, wa_id), timeout=60, what="the bot's answer")
    assert bot_says(inbox, wa_id) == ["We could not check your order right now."]
    assert time.monotonic() - started < 30


def test_an_api_call_to_a_private_address_is_refused_without_the_allow_list(inbox, shop):
    _, private = shop
    go_live(inbox, *order_bot(f"{private}/orders/A-42"))
    wa_id = customer()
    inbox.customer_says(wa_id, "order")
    wait_for(lambda: bot_says(inbox, wa_id), timeout=60, what="the bot's answer")
    assert bot_says(inbox, wa_id) == ["We could not check your order right now."]
    assert Shop.seen == []  # refused before connecting: the private server never heard of it


@pytest.fixture
def sandbox_ai(inbox):
    """The organization's AI settings on the sandbox's stand-in (saved through the API); the stand-in's knobs."""
    original = get_settings()
    use_settings(original.with_overrides(outbound_allowed_hosts=("127.0.0.1",)))  # the web's check at save
    try:
        saved = inbox.api("PUT", "/ai-settings", inbox.admin, json={
            "base_url": f"{inbox.sandbox}/ai/v1", "model": "gpt-test", "api_key": "sk-test-abcd1234"})
    finally:
        use_settings(original)
    assert saved.status_code == 200, saved.text

    def knobs(**changes):
        requests.put(f"{inbox.sandbox}/_sandbox/ai", json=changes, timeout=5).raise_for_status()

    yield knobs
    knobs(answers={}, default_answer=None, fail=None)


def ai_bot() -> tuple[list, list]:
    return [
        node("start", "start", trigger="keyword", keywords=["question"], match="contains"),
        node("think", "ai_prompt", prompt="The customer asks: {{system.last_message}}", variable="answer",
             system="You answer for a shoe shop.", timeout_seconds=5),
        node("answer", "end", message="{{vars.answer}}"),
        node("fallback", "handoff", department_id=None, message="Let me find someone who knows."),
    ], [edge("start", "think"), edge("think", "answer", "success"), edge("think", "fallback", "fallback")]


def test_an_ai_prompt_stores_the_answer_and_falls_back_when_the_endpoint_fails(inbox, sandbox_ai):
    sandbox_ai(answers={"refund": "Refunds take 5 days."}, fail=None)
    go_live(inbox, *ai_bot())
    wa_id = customer()
    inbox.customer_says(wa_id, "A question about my refund")
    wait_for(lambda: bot_says(inbox, wa_id), timeout=60, what="the bot's answer")
    assert bot_says(inbox, wa_id) == ["Refunds take 5 days."]
    [session] = sessions_of(inbox)
    assert session.state["globals"].get("answer", session.state["locals"].get("answer")) == "Refunds take 5 days."

    sandbox_ai(fail="error")
    other = customer()
    inbox.customer_says(other, "A question about sizes")
    wait_for(lambda: bot_says(inbox, other), timeout=60, what="the fallback")
    assert bot_says(inbox, other) == ["Let me find someone who knows."]
    conversation = wait_for(lambda: (c := inbox.conversation_of(other)) and c.assigned_agent_id and c, timeout=30,
                            what="the handoff to the online agent")
    assert conversation.assigned_agent_id == inbox.agent.id
