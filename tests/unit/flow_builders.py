"""Small builders for chatbots in the shape shared/flows reads (React Flow nodes and edges)."""

from __future__ import annotations

import datetime as dt
from typing import Any

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)


def node(id_: str, node_type: str, /, **data: Any) -> dict[str, Any]:
    return {"id": id_, "type": node_type, "position": {"x": 0, "y": 0}, "data": data}


def edge(source: str, target: str, handle: str | None = None) -> dict[str, Any]:
    return {"id": f"{source}->{target}:{handle}", "source": source, "target": target, "sourceHandle": handle}


def bot(nodes: list[dict], edges: list[dict], *, variables: dict | None = None, flow_variables: dict | None = None,
        other_flows: dict | None = None) -> dict[str, Any]:
    flows = {"main": {"name": "Main", "nodes": nodes, "edges": edges, "variables": flow_variables or {}}}
    flows.update(other_flows or {})
    return {"chatbot_id": "bot-1", "main_flow_id": "main", "flows": flows, "variables": variables or {}}


def six_node_bot(**question: Any) -> dict[str, Any]:
    """message → question (buttons) → condition → action → message → end, plus a handoff for the side paths."""
    return bot(
        [
            node("start", "start", trigger="keyword", keywords=["plans"]),
            node("hello", "message", kind="text", text="Hi {{contact.name | there}}!"),
            node("ask", "question", text="Which plan?", answer_type="choice", variable="plan",
                 buttons=[{"id": "pro", "title": "Pro"}, {"id": "free", "title": "Free"}],
                 **{"retry_message": "Please tap Pro or Free", "retry_limit": 1, "timeout_seconds": 600, **question}),
            node("check", "condition", branches=[{"id": "is_pro", "expression": "vars.plan == 'pro'"}]),
            node("tag", "action", actions=[{"type": "tag", "tag": "pro-lead"},
                                           {"type": "change_lead_score", "delta": 10}]),
            node("thanks", "message", kind="text", text="Thanks, {{vars.plan}} it is."),
            node("end", "end"),
            node("agent", "handoff", department_id="sales", message="An agent will take it from here."),
            node("bye", "end", message="No answer, talk soon."),
        ],
        [
            edge("start", "hello"), edge("hello", "ask"), edge("ask", "check"), edge("ask", "bye", "timeout"),
            edge("ask", "agent", "retry_limit"), edge("check", "tag", "is_pro"), edge("check", "thanks", "else"),
            edge("tag", "thanks"), edge("thanks", "end"),
        ],
    )


def texts(actions: list[dict]) -> list[str]:
    """The bodies of the messages a step sends (interactive ones by their body text)."""
    sent = [action["message"] for action in actions if action["type"] == "send_message"]
    return [m["text"]["body"] if m["type"] == "text" else m["interactive"]["body"]["text"] for m in sent]
