"""The step function the bots pool calls: `start` for a conversation without a session, `step` for one
that has one. Both return `{"actions", "state", "status", "visited", "errors"}` and never change their
arguments. An event the session is not waiting for (a second timeout, an answer while an API call is
out, anything after the end) changes nothing: same state, no actions.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from shared.flows.answers import read_answer
from shared.flows.messages import question_kind
from shared.flows.scope import write_variable
from shared.flows.triggers import find_start
from shared.flows.walk import Walk

CUSTOMER_EVENTS = ("text", "button", "list", "template_button", "media")
STATE_VERSION = 1


def _context(context: dict[str, Any] | None) -> dict[str, Any]:
    context = dict(context or {})
    now = context.get("now") or dt.datetime.now(dt.timezone.utc)
    context["now"] = now if now.tzinfo else now.replace(tzinfo=dt.timezone.utc)
    return context


def _result(walk: Walk | None, state: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "actions": walk.actions if walk else [],
        "state": walk.state if walk else state,
        "status": (walk.state if walk else state or {}).get("status", "not_started"),
        "visited": walk.visited if walk else [],
        "errors": walk.errors if walk else [],
        "contact": walk.contact if walk else None,  # the contact as the actions leave it (None: unchanged)
    }


def _said(event: dict[str, Any]) -> str | None:
    text = event.get("text") if event.get("type") == "text" else event.get("title")
    return text if isinstance(text, str) else None


def start(bot: dict[str, Any], *, event: dict[str, Any], context: dict[str, Any] | None = None) -> dict[str, Any]:
    """A new session when `event` matches a start node's trigger; status "not_started" (state None) when none."""
    found = find_start(bot, event)
    if found is None:
        return _result(None, None)
    flow_id, node = found
    state = {
        "v": STATE_VERSION, "chatbot_id": bot.get("chatbot_id"), "flow_id": flow_id, "node_id": node["id"],
        "status": "running", "wait": None, "seq": 0, "auto_visits": 0, "last_message": _said(event),
        "globals": copy.deepcopy(bot.get("variables") or {}),
        "locals": copy.deepcopy(bot["flows"][flow_id].get("variables") or {}),
    }
    walk = Walk(bot, state, _context(context))
    walk.run_from(flow_id, node["id"])
    return _result(walk, None)


def step(bot: dict[str, Any], state: dict[str, Any], *, event: dict[str, Any],
         context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The session's next step for `event`: a customer message, {"type": "timeout"}, an api_result or an ai_result."""
    wait = state.get("wait") if state.get("status") == "waiting" else None
    if wait is None or (event.get("wait_id") is not None and event.get("wait_id") != wait["id"]):
        return _result(None, state)
    walk = Walk(bot, state, _context(context))
    kind = event.get("type")
    if kind == "timeout":
        if not _due(wait, walk.now()):
            return _result(None, state)
        walk.follow("timeout")
    elif kind in ("api_result", "ai_result"):
        if wait["kind"] != kind.split("_")[0] or event.get("call_id") not in (None, wait["id"]):
            return _result(None, state)
        walk.api_result(event) if kind == "api_result" else walk.ai_result(event)
    elif kind in CUSTOMER_EVENTS and wait["kind"] == "answer":
        walk.state["last_message"] = _said(event)
        walk.state["auto_visits"] = 0
        if not _answer(walk, event):
            return _result(None, state)
    else:
        return _result(None, state)
    return _result(walk, None)


def _due(wait: dict[str, Any], now: dt.datetime) -> bool:
    return wait["kind"] == "answer" and wait["deadline"] is not None and now >= dt.datetime.fromisoformat(
        wait["deadline"])


def _answer(walk: Walk, event: dict[str, Any]) -> bool:
    """Moves the session on for the customer's answer; False when the answer changes nothing."""
    node = walk.node() or {}
    data = node.get("data") or {}
    if node.get("type") == "message":  # an interactive message: its buttons' edges, or the default one
        clicked = event.get("id") if event.get("type") in ("button", "list") else None
        if walk.target(clicked, None) is None:
            return False
        walk.follow(clicked, None)
        return True
    accepted, value = read_answer(data, event, walk.context)
    if accepted:
        write_variable(walk.state, data["variable"], value)
        walk.follow(value, None) if data.get("answer_type") == "choice" else walk.follow(None)
    elif walk.state["wait"]["retries"] < data.get("retry_limit", 2):
        _retry(walk, data)
    elif walk.target("retry_limit", "invalid") is not None:
        walk.follow("retry_limit", "invalid")
    else:
        walk.hand_off(None)  # a customer who cannot get past a question needs a person
    return True


def _retry(walk: Walk, data: dict[str, Any]) -> None:
    retries = walk.state["wait"]["retries"] + 1
    retry_text = data.get("retry_message") or data["text"]
    walk.send({**data, "text": retry_text}, question_kind(data))
    walk.wait("answer", seconds=data.get("timeout_seconds"))
    walk.state["wait"]["retries"] = retries
