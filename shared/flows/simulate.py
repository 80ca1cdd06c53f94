"""Running a chatbot against a scripted conversation, with no WhatsApp send and no database.

The script is the customer's side: `{"type": "text", "text": ...}`, `{"type": "button", "id": ...}`,
`{"type": "list", "id": ...}`, and `{"type": "timeout"}` for a customer who stays silent until the
waiting question's deadline. A message may carry `"after_seconds"` to let time pass before it.
API and AI calls go to the `call_api` / `call_ai` callables (given the call action, answering
`{"ok", "status", "json"}` / `{"ok", "text"}`); without them every call fails, so the failure and
fallback paths are what a simulation shows by default.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from shared.flows import runtime, scope
from shared.flows.graph import validate_bot

Call = Callable[[dict[str, Any]], dict[str, Any]]
MAX_CALLS_PER_MESSAGE = 50
MAX_WAIT_SECONDS = 30 * 24 * 3600
SCRIPT_EVENTS = {"text": "text", "button": "id", "list": "id", "template_button": "payload", "timeout": None}


class ScriptError(ValueError):
    """A scripted message simulate() cannot play; the message says which one and why."""


def check_script(messages: Any) -> None:
    if not isinstance(messages, list):
        raise ScriptError("messages must be a list")
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict) or message.get("type") not in SCRIPT_EVENTS:
            raise ScriptError(f"{where} must be an object whose type is one of {', '.join(SCRIPT_EVENTS)}")
        field = SCRIPT_EVENTS[message["type"]]
        if field and not isinstance(message.get(field), str):
            raise ScriptError(f"{where}: a {message['type']} message needs its {field} as a text")
        wait = message.get("after_seconds", 0)
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= MAX_WAIT_SECONDS:
            raise ScriptError(f"{where}: after_seconds must be a number from 0 to {MAX_WAIT_SECONDS}")


def _no_api(action: dict[str, Any]) -> dict[str, Any]:
    return {"ok": False, "status": 0, "json": None, "error": "API calls are not made in a simulation"}


def _no_ai(action: dict[str, Any]) -> dict[str, Any]:
    return {"ok": False, "text": None, "error": "the AI endpoint is not called in a simulation"}


class _Simulation:
    def __init__(self, bot: dict[str, Any], *, contact: dict[str, Any] | None, now: dt.datetime,
                 context: dict[str, Any], call_api: Call, call_ai: Call) -> None:
        self.bot, self.now, self.base_context = bot, now, context
        self.contact = scope.contact_view(contact)
        self.call = {"call_api": (call_api, "api_result"), "call_ai": (call_ai, "ai_result")}
        self.state: dict[str, Any] | None = None
        self.transcript: list[dict[str, Any]] = []
        self.actions: list[dict[str, Any]] = []
        self.errors: list[str] = []

    def context(self) -> dict[str, Any]:
        return {**self.base_context, "now": self.now, "contact": self.contact}

    def customer(self, message: dict[str, Any]) -> None:
        self.now += dt.timedelta(seconds=float(message.get("after_seconds") or 0))
        event = {key: value for key, value in message.items() if key != "after_seconds"}
        self.transcript.append({"from": "customer", **event})
        if event.get("type") == "timeout":
            deadline = ((self.state or {}).get("wait") or {}).get("deadline")
            if deadline:
                self.now = max(self.now, dt.datetime.fromisoformat(deadline))
        if self.state is None or self.state["status"] == "ended":
            self.apply(runtime.start(self.bot, event=event, context=self.context()))
        else:
            self.apply(runtime.step(self.bot, self.state, event=event, context=self.context()))

    def apply(self, result: dict[str, Any], calls: int = 0) -> None:
        if result["state"] is not None:
            self.state = result["state"]
        if result["contact"] is not None:
            self.contact = result["contact"]
        self.errors += result["errors"]
        pending = []
        for action in result["actions"]:
            if action["type"] == "send_message":
                self.transcript.append({"from": "bot", "message": action["message"]})
            else:
                self.actions.append(action)
            if action["type"] in self.call:
                pending.append(action)
        for action in pending[:1] if calls < MAX_CALLS_PER_MESSAGE else []:
            call, event_type = self.call[action["type"]]
            answer = {**call(action), "type": event_type, "call_id": action["call_id"]}
            self.apply(runtime.step(self.bot, self.state, event=answer, context=self.context()), calls + 1)

    def report(self) -> dict[str, Any]:
        state = self.state or {}
        return {
            "transcript": self.transcript,
            "variables": {**state.get("globals", {}), **state.get("locals", {})},
            "status": state.get("status", "not_started"),
            "actions": self.actions,
            "contact": self.contact,
            "errors": self.errors,
            "state": self.state,
            "problems": [],
        }


def simulate(bot: dict[str, Any], messages: list[dict[str, Any]], *, contact: dict[str, Any] | None = None,
             now: dt.datetime | None = None, call_api: Call | None = None, call_ai: Call | None = None,
             timezone: str | None = None, number: str | None = None) -> dict[str, Any]:
    """{"transcript", "variables", "status", "actions", "contact", "errors", "state", "problems"} after the script.

    status is "waiting", "ended", "handoff", "not_started" when no message matched a trigger, or
    "invalid" when the chatbot has problems (listed as validate_bot lists them; nothing is run).
    Raises ScriptError (a ValueError) for a script it cannot play.
    """
    check_script(messages)
    problems = validate_bot(bot)
    if problems:
        return {"transcript": [], "variables": {}, "status": "invalid", "actions": [], "contact": scope.contact_view(
            contact), "errors": [], "state": None, "problems": problems}
    now = now or dt.datetime.now(dt.timezone.utc)
    simulation = _Simulation(bot, contact=contact, now=now if now.tzinfo else now.replace(tzinfo=dt.timezone.utc),
                             context={"timezone": timezone, "number": number},
                             call_api=call_api or _no_api, call_ai=call_ai or _no_ai)
    for message in messages:
        simulation.customer(message)
    return simulation.report()
