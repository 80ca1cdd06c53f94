"""Bots pipeline: publishing a chatbot's draft as an immutable version, rolling back, and simulating.

A version is the whole chatbot frozen in the shape shared.flows reads (`draft_bot`); the chatbot's
`live_version` names the one new sessions start on. Publish validates the whole draft with the interpreter's
own rules and refuses it with every problem listed; rollback only moves `live_version`, it writes no content.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared import flows
from shared.errors import InvalidInputError, NotFoundError
from shared.models import Chatbot, ChatbotVersion
from shared.models.base import utcnow
from shared.services import chatbot_flows, flow_graph


class ChatbotVersionNotFoundError(NotFoundError):
    code = "chatbot_version_not_found"


class ChatbotInvalidError(InvalidInputError):
    code = "chatbot_invalid"


MAX_VERSION = 2**31 - 1
NO_FLOW = {"flow_id": None, "node_id": None, "field": None, "message": "The chatbot has no flow yet"}


def draft_bot(session: Session, *, chatbot: Chatbot) -> dict[str, Any]:
    """The draft as the interpreter reads it: {chatbot_id, main_flow_id, flows, variables}."""
    drafts = chatbot_flows.list_flows(session, chatbot=chatbot)
    main = next((f for f in drafts if f.is_main), None)
    return {
        "chatbot_id": str(chatbot.id),
        "main_flow_id": str(main.id) if main else None,
        "flows": {str(f.id): {"name": f.name, **flow_graph.get_graph(session, flow=f), "variables": f.variables}
                  for f in drafts},
        "variables": chatbot.variables,
    }


def _valid_draft(session: Session, chatbot: Chatbot) -> dict[str, Any]:
    bot = draft_bot(session, chatbot=chatbot)
    problems = flows.validate_bot(bot) if bot["main_flow_id"] else [NO_FLOW]
    if problems:
        raise ChatbotInvalidError(f"The chatbot has {len(problems)} problem(s); see details.problems",
                                  details={"problems": problems})
    return bot


def publish_chatbot(session: Session, *, chatbot: Chatbot, published_by_id: uuid.UUID | None) -> ChatbotVersion:
    """Freeze the draft as version n+1 and make it the one new sessions start on."""
    session.refresh(chatbot, with_for_update=True)  # two publishes at once get n+1 and n+2, not one failure
    bot = _valid_draft(session, chatbot)
    latest = session.execute(
        select(func.max(ChatbotVersion.number)).where(ChatbotVersion.chatbot_id == chatbot.id)
    ).scalar_one()
    version = ChatbotVersion(organization_id=chatbot.organization_id, chatbot_id=chatbot.id,
                             number=(latest or 0) + 1, content=bot, published_at=utcnow(),
                             published_by_id=published_by_id)
    session.add(version)
    chatbot.live_version = version.number
    session.flush()
    return version


def list_versions(session: Session, *, chatbot: Chatbot) -> list[ChatbotVersion]:
    """Newest first."""
    return list(session.execute(
        select(ChatbotVersion).where(ChatbotVersion.chatbot_id == chatbot.id).order_by(ChatbotVersion.number.desc())
    ).scalars())


def get_version(session: Session, *, chatbot: Chatbot, number: int) -> ChatbotVersion:
    if not 1 <= number <= MAX_VERSION:  # past PostgreSQL's integer: no such version, not a failed statement
        raise ChatbotVersionNotFoundError(f"chatbot version {number} not found", details={"field": "version"})
    version = session.execute(
        select(ChatbotVersion).where(ChatbotVersion.chatbot_id == chatbot.id, ChatbotVersion.number == number)
    ).scalar_one_or_none()
    if version is None:
        raise ChatbotVersionNotFoundError(f"chatbot version {number} not found", details={"field": "version"})
    return version


def rollback_chatbot(session: Session, *, chatbot: Chatbot, number: int) -> Chatbot:
    """New sessions start on version `number` again; nothing is copied and no version is written."""
    chatbot.live_version = get_version(session, chatbot=chatbot, number=number).number
    session.flush()
    return chatbot


def simulate_chatbot(session: Session, *, chatbot: Chatbot, messages: list[dict[str, Any]],
                     version: int | None = None, contact: dict[str, Any] | None = None,
                     timezone: str | None = None) -> dict[str, Any]:
    """Run the draft (validated first, as publish would) or a version against scripted customer messages.

    Pure: the interpreter sends nothing and the contact is a dict, so no row changes. API and AI calls are not
    made (the interpreter answers them as failed), so a simulation shows their failure and fallback paths.
    """
    if version is None:
        bot = _valid_draft(session, chatbot)
    else:
        bot = get_version(session, chatbot=chatbot, number=version).content
    return flows.simulate(bot, messages, contact=contact, now=utcnow(), timezone=timezone)
