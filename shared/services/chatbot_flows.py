"""Bots pipeline: the flows of a chatbot's draft, exactly one of them the main flow (where a session starts).

The first flow is main; making another main moves it there; the main flow cannot be deleted while other flows
exist. Changes take the chatbot's row lock first, so two requests moving the main flow one after the other never
meet the partial unique index that backs the rule.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.db import get_owned
from shared.errors import ConflictError, NotFoundError
from shared.models import Chatbot, ChatbotFlow


class FlowNotFoundError(NotFoundError):
    code = "flow_not_found"


class MainFlowRequiredError(ConflictError):
    code = "main_flow_required"


def _lock(session: Session, chatbot: Chatbot) -> None:
    session.refresh(chatbot, with_for_update=True)


def _flow_count(session: Session, chatbot: Chatbot) -> int:
    return session.execute(
        select(func.count()).select_from(ChatbotFlow).where(ChatbotFlow.chatbot_id == chatbot.id)
    ).scalar_one()


def _make_main(session: Session, flow: ChatbotFlow) -> None:
    session.execute(
        update(ChatbotFlow).where(ChatbotFlow.chatbot_id == flow.chatbot_id, ChatbotFlow.is_main.is_(True),
                                  ChatbotFlow.id != flow.id)
        .values(is_main=False).execution_options(synchronize_session="fetch")
    )
    flow.is_main = True
    session.flush()


def create_flow(session: Session, *, chatbot: Chatbot, name: str, is_main: bool = False,
                variables: dict[str, Any] | None = None) -> ChatbotFlow:
    _lock(session, chatbot)
    first = _flow_count(session, chatbot) == 0
    flow = ChatbotFlow(organization_id=chatbot.organization_id, chatbot_id=chatbot.id, name=name,
                       variables=variables or {}, is_main=False)
    session.add(flow)
    session.flush()
    if first or is_main:
        _make_main(session, flow)
    session.refresh(flow)
    return flow


def get_flow(session: Session, *, chatbot: Chatbot, flow_id: Any) -> ChatbotFlow:
    flow = get_owned(session, ChatbotFlow, flow_id, org_id=chatbot.organization_id, not_found=FlowNotFoundError)
    if flow.chatbot_id != chatbot.id:
        raise FlowNotFoundError(f"flow {flow_id} not found")
    return flow


def list_flows(session: Session, *, chatbot: Chatbot) -> list[ChatbotFlow]:
    """The main flow first, then the others in the order they were made."""
    return list(session.execute(
        select(ChatbotFlow).where(ChatbotFlow.chatbot_id == chatbot.id)
        .order_by(ChatbotFlow.is_main.desc(), ChatbotFlow.created_at, ChatbotFlow.id)
    ).scalars())


def update_flow(session: Session, *, chatbot: Chatbot, flow: ChatbotFlow, changes: dict[str, Any]) -> ChatbotFlow:
    """`is_main: true` moves the main flow here; `is_main: false` on the main flow is refused (say which flow
    is main instead: a chatbot never has none)."""
    changes = dict(changes)
    is_main = changes.pop("is_main", None)
    if is_main is False and flow.is_main:
        raise MainFlowRequiredError("A chatbot always has one main flow: make another flow main instead",
                                    details={"field": "is_main"})
    for field, value in changes.items():
        setattr(flow, field, value)
    if is_main and not flow.is_main:
        _lock(session, chatbot)
        _make_main(session, flow)
    session.flush()
    return flow


def delete_flow(session: Session, *, chatbot: Chatbot, flow: ChatbotFlow) -> None:
    """Deletes the flow with its nodes and edges (published versions keep their own copy)."""
    _lock(session, chatbot)
    if flow.is_main and _flow_count(session, chatbot) > 1:
        raise MainFlowRequiredError("The main flow cannot be deleted while other flows exist: make another flow "
                                    "main first")
    session.delete(flow)
    session.flush()
