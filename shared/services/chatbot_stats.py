"""A chatbot's sessions over a period, whole and per node: started, completed, handed off, timed out,
dropped. Set-wise SQL over bot_sessions (the nodes a session visited are its `path`)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import Integer, and_, func, select, true
from sqlalchemy.orm import Session

from shared.errors import InvalidInputError
from shared.models import BotEndReason, BotSession, BotSessionStatus, Chatbot, ChatbotVersion
from shared.models.base import utcnow

DEFAULT_PERIOD = dt.timedelta(days=7)
MAX_PERIOD = dt.timedelta(days=366)


class InvalidPeriodError(InvalidInputError):
    code = "invalid_period"


# A session that ended without finishing its flow or reaching an agent: it dropped off at its last node.
DROPPED = (BotEndReason.agent.value, BotEndReason.closed.value, BotEndReason.expired.value)
OUTCOMES = ("completed", "handed_off", "dropped", "active")


def _outcome(status: BotSessionStatus, end_reason: str | None) -> str:
    if end_reason == BotEndReason.handoff.value:
        return "handed_off"
    if end_reason == BotEndReason.completed.value:
        return "completed"
    if end_reason in DROPPED:
        return "dropped"
    return "active" if status != BotSessionStatus.ended else "completed"


def _node_types(session: Session, chatbot: Chatbot) -> dict[str, str]:
    """"flow_id/node_id" -> node type, from every published version (newest last wins)."""
    types: dict[str, str] = {}
    for content in session.execute(select(ChatbotVersion.content).where(ChatbotVersion.chatbot_id == chatbot.id)
                                   .order_by(ChatbotVersion.number)).scalars():
        for flow_id, flow in (content.get("flows") or {}).items():
            for node in flow.get("nodes") or []:
                types[f"{flow_id}/{node['id']}"] = node.get("type")
    return types


def chatbot_stats(session: Session, *, chatbot: Chatbot, start: dt.datetime | None,
                  end: dt.datetime | None) -> dict[str, Any]:
    """The sessions `chatbot` started in [start, end) (default: the last 7 days): totals, and per node reached /
    timed out, and the sessions that completed, were handed off, dropped or are still active there (their last node)."""
    end = end or utcnow()
    start = start or end - DEFAULT_PERIOD
    if not dt.timedelta(0) < end - start <= MAX_PERIOD:
        raise InvalidPeriodError("`from` must be before `to`, at most 366 days apart",
                                 details={"from": start.isoformat(), "to": end.isoformat()})
    in_period = and_(BotSession.chatbot_id == chatbot.id, BotSession.created_at >= start, BotSession.created_at < end)
    last_node = func.concat(BotSession.state["flow_id"].astext, "/", BotSession.state["node_id"].astext)
    by_last = session.execute(
        select(last_node, BotSession.status, BotSession.end_reason, func.count(),
               func.sum(func.least(BotSession.timeouts, 1).cast(Integer)))
        .where(in_period).group_by(last_node, BotSession.status, BotSession.end_reason)
    ).all()
    reached = _count_elements(session, BotSession.path, in_period)
    timed_out = _count_elements(session, BotSession.timed_out_nodes, in_period)

    totals = dict.fromkeys(("started", "timed_out", *OUTCOMES), 0)
    nodes: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(("reached", "timed_out", *OUTCOMES), 0))
    for key, status, end_reason, count, sessions_timed_out in by_last:
        outcome = _outcome(status, end_reason)
        totals["started"] += count
        totals["timed_out"] += sessions_timed_out or 0
        totals[outcome] += count
        nodes[key][outcome] += count
    for key, count in reached.items():
        nodes[key]["reached"] = count
    for key, count in timed_out.items():
        nodes[key]["timed_out"] = count
    types = _node_types(session, chatbot)
    return {
        "from": start, "to": end, "sessions": totals,
        "nodes": [{"flow_id": key.split("/", 1)[0], "node_id": key.split("/", 1)[1], "type": types.get(key), **counts}
                  for key, counts in sorted(nodes.items(), key=lambda item: (-item[1]["reached"], item[0]))
                  if "/" in key and key != "/"],
    }


def _count_elements(session: Session, column, where) -> dict[str, int]:
    """How many sessions have each element of the JSON array `column` (each listed once per session)."""
    element = func.jsonb_array_elements_text(column).table_valued("value").render_derived()
    return dict(session.execute(
        select(element.c.value, func.count(func.distinct(BotSession.id)))
        .select_from(BotSession).join(element, true()).where(where).group_by(element.c.value)
    ).all())
