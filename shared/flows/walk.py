"""Walking a session through its nodes until it waits (for the customer, an API or the AI) or ends.

One `Walk` is one step: it reads and changes the session state it was given (a copy), collects the
actions for the bots pool, and records the nodes it visited (for per-node statistics).
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from shared.flows import expressions, jsonpath, scope
from shared.flows.index import edges_by_handle, nodes_by_id, start_nodes
from shared.flows.messages import build_message, question_kind
from shared.flows.templating import render, render_all

# Nodes one step may pass without the customer speaking; more means a loop (validate_bot refuses the
# loops it can see; a condition that keeps choosing a way back is caught here).
MAX_NODES_WITHOUT_CUSTOMER = 100
DEFAULT_CALL_TIMEOUT = {"api_call": 10, "ai_prompt": 20}


class Walk:
    def __init__(self, bot: dict[str, Any], state: dict[str, Any], context: dict[str, Any]) -> None:
        self.bot = bot
        self.state = copy.deepcopy(state)
        self.context = context
        self.contact = scope.contact_view(context.get("contact"))
        self.actions: list[dict[str, Any]] = []
        self._lookups: dict[str, tuple[dict, dict]] = {}  # flow id -> (nodes by id, edges by handle), built once
        self.visited: list[dict[str, str]] = []
        self.errors: list[str] = []

    # -- reading ---------------------------------------------------------------------------------

    def lookup(self, path: tuple) -> Any:
        return scope.resolve(path, state=self.state, contact=self.contact, context=self.context)

    def flow(self) -> dict[str, Any]:
        return self.bot["flows"][self.state["flow_id"]]

    def _lookup(self) -> tuple[dict[str, dict], dict[tuple[str, str | None], str]]:
        """The current flow's nodes by id and edges by (node, handle): built once per step, not per node."""
        flow_id = self.state["flow_id"]
        if flow_id not in self._lookups:
            self._lookups[flow_id] = (nodes_by_id(self.flow()), edges_by_handle(self.flow()))
        return self._lookups[flow_id]

    def node(self) -> dict[str, Any] | None:
        return self._lookup()[0].get(self.state["node_id"])

    def target(self, *handles: str | None) -> str | None:
        """Where the current node's first wired handle of `handles` leads; None when none is wired."""
        wired = self._lookup()[1]
        return next((wired[(self.state["node_id"], name)] for name in handles
                     if (self.state["node_id"], name) in wired), None)

    def data(self) -> dict[str, Any]:
        return (self.node() or {}).get("data") or {}

    def now(self) -> dt.datetime:
        return self.context["now"]

    # -- moving ----------------------------------------------------------------------------------

    def follow(self, *handles: str | None) -> None:
        """Continue by the first of `handles` that has an edge; the session ends where none has."""
        target = self.target(*handles)
        if target is None:
            return self.finish("ended")
        self.run_from(self.state["flow_id"], target)

    def run_from(self, flow_id: str, node_id: str) -> None:
        self.state["wait"] = None
        while True:
            if flow_id != self.state["flow_id"]:
                self.state["locals"] = copy.deepcopy(self.bot["flows"][flow_id].get("variables") or {})
            self.state["flow_id"], self.state["node_id"] = flow_id, node_id
            node = self.node()
            if node is None:
                self.errors.append(f"node {node_id!r} does not exist in flow {flow_id!r}")
                return self.finish("ended")
            self.state["auto_visits"] = self.state.get("auto_visits", 0) + 1
            if self.state["auto_visits"] > MAX_NODES_WITHOUT_CUSTOMER:
                self.errors.append(f"loop guard: {MAX_NODES_WITHOUT_CUSTOMER} nodes passed without the customer")
                return self.hand_off(None)
            self.visited.append({"flow_id": flow_id, "node_id": node_id})
            target = getattr(self, f"on_{node['type']}")(node.get("data") or {})
            if target is None:
                return
            flow_id, node_id = target

    def finish(self, status: str) -> None:
        self.state["status"], self.state["wait"] = status, None

    def hand_off(self, department_id: str | None) -> None:
        self.actions.append({"type": "handoff", "department_id": department_id})
        self.finish("handoff")

    def wait(self, kind: str, *, seconds: float | None = None) -> None:
        self.state["seq"] = self.state.get("seq", 0) + 1
        deadline = (self.now() + dt.timedelta(seconds=seconds)).astimezone(dt.timezone.utc) if seconds else None
        self.state["wait"] = {"kind": kind, "id": self.state["seq"], "retries": 0,
                              "deadline": deadline.isoformat() if deadline else None}
        self.state["status"] = "waiting"

    def send(self, data: dict[str, Any], kind: str) -> None:
        try:
            self.actions.append({"type": "send_message", "message": build_message(data, kind, self.lookup)})
        except ValueError as exc:
            self.errors.append(f"node {self.state['node_id']!r}: not sent: {exc}")

    def next_of(self, handle: str | None) -> tuple[str, str] | None:
        """Where `handle` leads inside this node, for nodes that do not wait; ends the session when nowhere."""
        target = self.target(handle)
        if target is None:
            self.finish("ended")
            return None
        return self.state["flow_id"], target

    # -- the node types --------------------------------------------------------------------------

    def on_start(self, data: dict) -> tuple[str, str] | None:
        return self.next_of(None)

    def on_message(self, data: dict) -> tuple[str, str] | None:
        kind = data.get("kind", "text")
        self.send(data, kind)
        if kind in ("buttons", "list"):
            return self.wait("answer")
        return self.next_of(None)

    def on_question(self, data: dict) -> None:
        self.send(data, question_kind(data))
        self.wait("answer", seconds=data.get("timeout_seconds"))

    def on_condition(self, data: dict) -> tuple[str, str] | None:
        for branch in data.get("branches") or []:
            try:
                holds = expressions.truthy(expressions.evaluate(expressions.parse(branch["expression"]), self.lookup))
            except expressions.ExpressionError as exc:
                self.errors.append(f"branch {branch.get('id')!r}: {exc}")
                holds = False
            if holds:
                return self.next_of(branch["id"])
        return self.next_of("else")

    def on_action(self, data: dict) -> tuple[str, str] | None:
        closing = False
        for operation in data.get("actions") or []:
            closing |= self.operate(operation)
        if closing:
            return self.finish("ended")
        return self.next_of(None)

    def operate(self, operation: dict[str, Any]) -> bool:
        """Applies one action-node operation; True when it closes the conversation."""
        kind = operation["type"]
        value = render_all(operation.get("value"), self.lookup)
        if kind == "set_variable":
            scope.write_variable(self.state, operation["name"], value)
            return False
        action = {key: render_all(item, self.lookup) for key, item in operation.items() if key != "type"}
        if kind in ("opt_in", "opt_out"):
            action.setdefault("category", "marketing")
        self.actions.append({"type": kind, **action})
        if kind == "tag" and action["tag"] not in self.contact["tags"]:
            self.contact["tags"].append(action["tag"])
        elif kind == "untag" and action["tag"] in self.contact["tags"]:
            self.contact["tags"].remove(action["tag"])
        elif kind == "set_lifecycle_stage":
            self.contact["lifecycle_stage"] = action["stage"]
        elif kind == "change_lead_score":
            self.contact["lead_score"] = (self.contact["lead_score"] or 0) + action["delta"]
        elif kind == "set_attribute":
            self.contact["attributes"][action["name"]] = value
        return kind == "close_conversation"

    def on_api_call(self, data: dict) -> None:
        self.wait("api")
        self.actions.append({
            "type": "call_api", "call_id": self.state["wait"]["id"], "method": data.get("method", "GET"),
            "url": render(data["url"], self.lookup), "headers": render_all(data.get("headers") or {}, self.lookup),
            "body": render_all(data.get("body"), self.lookup),
            "timeout_seconds": data.get("timeout_seconds") or DEFAULT_CALL_TIMEOUT["api_call"],
        })

    def on_ai_prompt(self, data: dict) -> None:
        self.wait("ai")
        self.actions.append({
            "type": "call_ai", "call_id": self.state["wait"]["id"],
            "system": render(data["system"], self.lookup) if data.get("system") else None,
            "prompt": render(data["prompt"], self.lookup),
            "timeout_seconds": data.get("timeout_seconds") or DEFAULT_CALL_TIMEOUT["ai_prompt"],
        })

    def on_jump(self, data: dict) -> tuple[str, str] | None:
        flow_id = data.get("flow_id") or self.state["flow_id"]
        flow = self.bot["flows"].get(flow_id)
        starts = start_nodes(flow) if flow else []
        node_id = data.get("node_id") or (starts[0]["id"] if starts else None)
        if node_id is None:
            self.errors.append(f"jump {self.state['node_id']!r}: its target does not exist")
            return self.finish("ended")
        return flow_id, node_id

    def on_end(self, data: dict) -> None:
        if data.get("message"):
            self.send({"text": data["message"]}, "text")
        if data.get("close_conversation"):
            self.actions.append({"type": "close_conversation"})
        self.finish("ended")

    def on_handoff(self, data: dict) -> None:
        if data.get("message"):
            self.send({"text": data["message"]}, "text")
        self.hand_off(data.get("department_id"))

    # -- what comes back -------------------------------------------------------------------------

    def api_result(self, event: dict[str, Any]) -> None:
        data = self.data()
        status = event.get("status")
        ok = bool(event.get("ok")) and not (isinstance(status, int) and status >= 400)
        if data.get("status_variable"):
            scope.write_variable(self.state, data["status_variable"], status)
        if not ok:
            return self.follow("failure")
        for mapping in data.get("mappings") or []:
            scope.write_variable(self.state, mapping["variable"], jsonpath.read(event.get("json"), mapping["path"]))
        self.follow("success")

    def ai_result(self, event: dict[str, Any]) -> None:
        text = event.get("text")
        if not event.get("ok") or not isinstance(text, str) or not text.strip():
            return self.follow("fallback")
        scope.write_variable(self.state, self.data()["variable"], text.strip())
        self.follow("success")
