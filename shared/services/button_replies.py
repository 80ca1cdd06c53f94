"""Conversations pipeline: a template's quick-reply button, tapped by the customer, acted on.

An organization maps button payloads to actions in its settings (`button_payload_actions`:
{"<payload>": "opt_out_marketing" | "opt_in_marketing" | "handoff" | "tag:<name>"}). Without a
mapping, a payload named like STOP or UNSUBSCRIBE opts the contact out of marketing: the button a
marketing template offers to stop them. The consent ledger's entry names the message the button
belongs to (and its campaign), so a business can show which send the customer answered.
"""

from __future__ import annotations

import re
import uuid

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.models import ConsentAction, ConsentScope, ConsentSource, Contact, Conversation, Message, Organization
from shared.services import assignment, consent, tags
from shared.whatsapp.payloads import InboundMessage

log = structlog.get_logger(__name__)

SETTING = "button_payload_actions"
PLAIN_ACTIONS = ("opt_out_marketing", "opt_in_marketing", "handoff")
TAG_PREFIX = "tag:"
_STOP_LIKE = re.compile(r"(?<![A-Z])(STOP|UNSUBSCRIBE|OPT[ _-]?OUT|PARAR|SAIR|BAJA)(?![A-Z])")


def is_action(action: object) -> bool:
    return isinstance(action, str) and (
        action in PLAIN_ACTIONS or (action.startswith(TAG_PREFIX) and bool(action[len(TAG_PREFIX):].strip())))


def action_for(org: Organization, payload: str) -> str | None:
    mapped = (org.settings or {}).get(SETTING) or {}
    if payload in mapped:
        return mapped[payload] if is_action(mapped[payload]) else None
    return "opt_out_marketing" if _STOP_LIKE.search(payload.upper()) else None


def apply(session: Session, *, org: Organization, contact: Contact, conversation: Conversation,
          message: InboundMessage) -> bool:
    """Act on a tapped button; True when its payload meant something (it is then no keyword as well)."""
    content = message.content if isinstance(message.content, dict) else {}
    payload = content.get("payload")
    if message.type != "button" or not isinstance(payload, str) or not payload:
        return False
    action = action_for(org, payload)
    if action is None:
        return False
    if action in ("opt_out_marketing", "opt_in_marketing"):
        consent.record_consent(
            session, contact=contact, scope=ConsentScope.marketing, source=ConsentSource.keyword, actor="customer",
            action=ConsentAction.opt_out if action == "opt_out_marketing" else ConsentAction.opt_in,
            evidence=_evidence(session, org.id, payload, message))
    elif action == "handoff":
        assignment.auto_assign(session, conversation=conversation)
    else:
        tags.tag_contacts(session, org_id=org.id, contact_ids=[contact.id], names=[action[len(TAG_PREFIX):].strip()])
    log.info("inbound.button_action", contact_id=contact.id, action=action)
    return True


def _evidence(session: Session, org_id: uuid.UUID, payload: str, message: InboundMessage) -> str:
    quoted = message.context.quoted_message_id if message.context else None
    answered = session.execute(
        select(Message.id, Message.campaign_id).where(Message.organization_id == org_id, Message.wamid == quoted)
    ).first() if quoted else None
    if answered is None:
        return f"button {payload!r} ({message.wamid})"
    campaign = f", campaign {answered.campaign_id}" if answered.campaign_id else ""
    return f"button {payload!r} on message {answered.id}{campaign} ({message.wamid})"
