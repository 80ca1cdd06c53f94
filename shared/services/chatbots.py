"""Bots pipeline: chatbots themselves (name, chatbot-wide variables, on or off) and which numbers they answer on.

Their flows and graphs are edited in shared.services.chatbot_flows and shared.services.flow_graph; publishing,
versions and simulation are in shared.services.chatbot_versions.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.db import ensure_name_free, get_owned
from shared.errors import ConflictError, InvalidInputError, NotFoundError
from shared.models import Chatbot, WhatsAppNumber


class ChatbotNotFoundError(NotFoundError):
    code = "chatbot_not_found"


class ChatbotNameTakenError(ConflictError):
    code = "chatbot_name_taken"


class ChatbotNotPublishedError(ConflictError):
    code = "chatbot_not_published"


class DefaultChatbotInvalidError(InvalidInputError):
    code = "default_chatbot_invalid"


def create_chatbot(session: Session, *, org_id: uuid.UUID, name: str, description: str | None = None,
                   variables: dict[str, Any] | None = None) -> Chatbot:
    ensure_name_free(session, Chatbot, org_id=org_id, name=name,
                     taken=ChatbotNameTakenError, what="chatbot")
    chatbot = Chatbot(organization_id=org_id, name=name, description=description, variables=variables or {})
    session.add(chatbot)
    session.flush()
    session.refresh(chatbot)
    return chatbot


def get_chatbot(session: Session, *, org_id: uuid.UUID, chatbot_id: uuid.UUID | str) -> Chatbot:
    return get_owned(session, Chatbot, chatbot_id, org_id=org_id, not_found=ChatbotNotFoundError)


def list_chatbots(session: Session, *, org_id: uuid.UUID) -> list[Chatbot]:
    return list(
        session.execute(select(Chatbot).where(Chatbot.organization_id == org_id).order_by(Chatbot.name)).scalars()
    )


def update_chatbot(session: Session, *, chatbot: Chatbot, changes: dict[str, Any]) -> Chatbot:
    if "name" in changes:
        ensure_name_free(session, Chatbot, org_id=chatbot.organization_id, name=changes["name"],
                         taken=ChatbotNameTakenError, what="chatbot", except_id=chatbot.id)
    for field, value in changes.items():
        setattr(chatbot, field, value)
    session.flush()
    return chatbot


def delete_chatbot(session: Session, *, chatbot: Chatbot) -> None:
    """Soft delete; the numbers it answered on by default fall back to no chatbot (the row stays, so the
    foreign key's ON DELETE does not do it)."""
    chatbot.soft_delete()
    chatbot.is_active = False
    session.execute(
        update(WhatsAppNumber).where(WhatsAppNumber.default_chatbot_id == chatbot.id).values(default_chatbot_id=None)
    )
    session.flush()


def activate_chatbot(session: Session, *, chatbot: Chatbot) -> Chatbot:
    if chatbot.live_version is None:
        raise ChatbotNotPublishedError("Publish the chatbot before activating it: there is no version to run")
    chatbot.is_active = True
    session.flush()
    return chatbot


def deactivate_chatbot(session: Session, *, chatbot: Chatbot) -> Chatbot:
    chatbot.is_active = False
    session.flush()
    return chatbot


def check_default_chatbot(session: Session, *, org_id: uuid.UUID, chatbot_id: uuid.UUID) -> None:
    """A number's default chatbot must be one of its own organization's (any other answers 422, not 404:
    the number exists, the value given for it is what is wrong)."""
    try:
        get_chatbot(session, org_id=org_id, chatbot_id=chatbot_id)
    except ChatbotNotFoundError as exc:
        raise DefaultChatbotInvalidError(
            f"No chatbot {chatbot_id} in this organization", details={"field": "default_chatbot_id"}
        ) from exc
