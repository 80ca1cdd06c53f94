"""Performing what a bot step asks for, in the step's transaction: replies, contact changes, closing and
hand-off. Outside calls (API, AI) are not performed here: the bots pool makes them after the commit
(shared/services/bot_runtime.py)."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.errors import DomainError
from shared.models import (
    ConsentAction,
    ConsentScope,
    ConsentSource,
    Contact,
    Conversation,
    ConversationOwner,
    ConversationStatus,
    Department,
    Organization,
    SenderType,
)
from shared.services import assignment, attributes, consent, contacts, conversations, messages, tags

log = structlog.get_logger(__name__)
OUTSIDE_CALLS = ("call_api", "call_ai")


def _department(session: Session, org_id: uuid.UUID, value: Any) -> uuid.UUID | None:
    """The organization's department `value` names; None for none, a malformed id or another's department."""
    try:
        department_id = uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
    return department_id if department_id and session.execute(select(Department.id).where(
        Department.id == department_id, Department.organization_id == org_id)).first() else None


def _set_attribute(session: Session, *, contact: Contact, name: str, value: Any) -> None:
    """A defined custom attribute, typed as its definition says; anything else is logged and skipped."""
    kind = attributes.attribute_types(session, org_id=contact.organization_id).get(name)
    if kind is None:
        log.info("bots.attribute_not_defined", contact_id=str(contact.id), attribute=name)
        return
    try:
        stored = attributes.coerce_value(name, kind, value)
    except DomainError as exc:
        log.info("bots.attribute_refused", contact_id=str(contact.id), attribute=name, code=exc.code)
        return
    merged = {**(contact.custom_attributes or {}), name: stored}
    contact.custom_attributes = {key: item for key, item in merged.items() if item is not None}


def perform(session: Session, *, org: Organization, conversation: Conversation, contact: Contact,
            actions: list[dict[str, Any]], key: str) -> None:
    """The step's actions, in order; bot replies are keyed `{key}:{index}` so a replayed step queues none twice."""
    for index, action in enumerate(actions):
        kind = action["type"]
        if kind == "send_message":
            try:
                messages.queue_message(session, org=org, conversation=conversation, spec=action["message"],
                                       sender_type=SenderType.bot, idempotency_key=f"{key}:{index}")
            except DomainError as exc:  # window closed, plan limit, ...: the session goes on, the reply does not
                log.info("bots.send_refused", conversation_id=str(conversation.id), code=exc.code)
        elif kind in ("tag", "untag"):
            change = tags.tag_contacts if kind == "tag" else tags.untag_contacts
            change(session, org_id=org.id, contact_ids=[contact.id], names=[action["tag"]])  # contact.tags reread
        elif kind == "set_lifecycle_stage":
            contact.lifecycle_stage = action["stage"]
        elif kind == "change_lead_score":
            contacts.adjust_lead_score(session, contact=contact, delta=int(action["delta"]))
        elif kind in ("opt_in", "opt_out"):
            consent.record_consent(
                session, contact=contact, scope=ConsentScope(action.get("category") or "marketing"),
                action=ConsentAction.opt_in if kind == "opt_in" else ConsentAction.opt_out,
                source=ConsentSource.flow, actor="bot", evidence=f"chatbot step {key}")
        elif kind == "set_attribute":
            _set_attribute(session, contact=contact, name=str(action["name"]), value=action.get("value"))
        elif kind == "assign_department":
            conversation.department_id = (_department(session, org.id, action.get("department_id"))
                                         or conversation.department_id)
        elif kind == "close_conversation":
            conversations.set_status(session, conversation=conversation, status=ConversationStatus.closed)
        elif kind == "handoff":
            conversation.department_id = (_department(session, org.id, action.get("department_id"))
                                         or conversation.department_id)
            conversation.owner = ConversationOwner.agent
            assignment.auto_assign(session, conversation=conversation)
        elif kind not in OUTSIDE_CALLS:
            log.info("bots.action_not_performed", conversation_id=str(conversation.id), action=kind)
    session.flush()
