"""Inbound pipeline: what customers send, from a `messages` webhook change to a routed conversation.

For each message: the contact is upserted (identity rules of the contacts services), the
conversation found or opened (a closed one reopens), the message stored once by its wamid (a
repeat is dropped here, so it is routed once too), the 24 h window moved forward, opt-out and
opt-in keywords recorded in the consent ledger with a confirmation reply, media fetched by a task
of its own, and the conversation handed to its agent (automatic assignment). A blocked contact's
messages are stored but not routed. Statuses in the same change go to the messages services.

Order: the caller (shared/services/webhooks.py) processes one number's payloads in arrival order
under a lock, so two quick messages from one customer are stored and routed in the order they came.
"""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.errors import DomainError
from shared.models import (
    ConsentAction,
    ConsentScope,
    ConsentSource,
    Contact,
    Conversation,
    Direction,
    Message,
    MessageStatus,
    Organization,
    SenderType,
    WhatsAppNumber,
)
from shared.models.base import utcnow
from shared.queueing.names import FETCH_MEDIA
from shared.queueing.publish import enqueue_on_commit
from shared.services import assignment, consent, contacts, conversations, messages, statuses
from shared.whatsapp.outbound import MEDIA_TYPES
from shared.whatsapp.payloads import InboundMessage, MessagesChange

log = structlog.get_logger(__name__)

DEFAULT_OPT_OUT_KEYWORDS = ("STOP", "PARAR", "SAIR", "CANCELAR", "UNSUBSCRIBE")
DEFAULT_OPT_IN_KEYWORDS = ("START", "VOLTAR")
DEFAULT_OPT_OUT_REPLY = "You will no longer receive messages from us. Reply START to receive them again."
DEFAULT_OPT_IN_REPLY = "You will receive our messages again. Reply STOP to stop them at any time."


def process_messages_change(session: Session, *, number: WhatsAppNumber, change: MessagesChange) -> None:
    org = session.get(Organization, number.organization_id)
    profiles = {contact.wa_id: contact.profile_name for contact in change.contacts if contact.wa_id}
    for message in change.messages:
        record_inbound(session, org=org, number=number, message=message,
                       profile_name=profiles.get(message.from_wa_id))
    for status in change.statuses:
        statuses.apply_status(session, number=number, status=status)


def _text_of(message: InboundMessage) -> str | None:
    content = message.content if isinstance(message.content, dict) else {}
    if message.type == "text":
        return content.get("body")
    if message.type == "button":
        return content.get("text") or content.get("payload")
    return None


def _keywords(org: Organization, name: str, default: tuple[str, ...]) -> set[str]:
    configured = org.settings.get(name)
    return {word.strip().upper() for word in (configured or default) if word and word.strip()}


def record_inbound(session: Session, *, org: Organization, number: WhatsAppNumber, message: InboundMessage,
                   profile_name: str | None) -> Message | None:
    """Store one inbound message and route it; None when its wamid was seen before."""
    if not message.from_wa_id:
        # Users known only by a business-scoped id (reference §10) cannot be keyed to a contact yet.
        log.warning("inbound.no_wa_id", wamid=message.wamid, user_id=message.from_user_id)
        return None
    contact = contacts.upsert_from_whatsapp(session, org_id=org.id, wa_id=message.from_wa_id, profile_name=profile_name)
    conversation = conversations.get_or_open(session, org_id=org.id, number_id=number.id, contact_id=contact.id)
    now = utcnow()
    content = message.content if isinstance(message.content, dict) else {"items": message.content}
    media_id = content.get("id") if message.type in MEDIA_TYPES else None
    message_id = session.execute(
        insert(Message)
        .values(
            organization_id=org.id, conversation_id=conversation.id, contact_id=contact.id, number_id=number.id,
            direction=Direction.inbound, type=message.type, content=content, wamid=message.wamid,
            status=MessageStatus.received, sender_type=SenderType.customer, occurred_at=message.timestamp,
            context_wamid=message.context.quoted_message_id if message.context else None,
            referral=message.referral, media_id=media_id,
        )
        .on_conflict_do_nothing(index_elements=[Message.wamid], index_where=Message.wamid.is_not(None))
        .returning(Message.id)
    ).scalar_one_or_none()
    if message_id is None:
        log.info("inbound.duplicate", wamid=message.wamid)
        return None
    stored = session.get(Message, message_id)
    conversations.note_inbound(conversation, stored, received_at=now)
    contact.first_inbound_at = contact.first_inbound_at or now
    contact.last_inbound_at = now
    contact.messages_in_count += 1
    if media_id:
        enqueue_on_commit(session, FETCH_MEDIA, message_id=str(stored.id), org_id=str(org.id))
    _apply_keyword(session, org=org, contact=contact, conversation=conversation, message=message)
    _route(session, conversation=conversation, contact=contact, message=stored, at=now)
    session.flush()
    return stored


def _apply_keyword(session: Session, *, org: Organization, contact: Contact, conversation: Conversation,
                   message: InboundMessage) -> None:
    text = (_text_of(message) or "").strip().upper()
    if not text:
        return
    if text in _keywords(org, "opt_out_keywords", DEFAULT_OPT_OUT_KEYWORDS):
        action, reply = ConsentAction.opt_out, org.settings.get("opt_out_reply") or DEFAULT_OPT_OUT_REPLY
    elif text in _keywords(org, "opt_in_keywords", DEFAULT_OPT_IN_KEYWORDS):
        action, reply = ConsentAction.opt_in, org.settings.get("opt_in_reply") or DEFAULT_OPT_IN_REPLY
    else:
        return
    consent.record_consent(session, contact=contact, action=action, scope=ConsentScope.all,
                           source=ConsentSource.keyword, actor="customer",
                           evidence=f"{message.type} message {message.wamid}: {text}")
    log.info("inbound.consent_keyword", contact_id=contact.id, action=action.value)
    # The confirmation is a service reply inside the window the keyword itself just opened.
    try:
        messages.queue_message(
            session, org=org, conversation=conversation, spec={"type": "text", "text": {"body": reply}},
            sender_type=SenderType.system, idempotency_key=f"keyword-reply:{message.wamid}",
        )
    except DomainError as exc:  # blocked contact, ended trial: the consent change stands, no reply goes
        log.info("inbound.keyword_reply_refused", contact_id=contact.id, code=exc.code)


def _route(session: Session, *, conversation: Conversation, contact: Contact, message: Message, at) -> None:
    """Hand the conversation to whoever works it. Blocked contacts are stored, never routed."""
    message.routed_at = at
    if contact.is_blocked:
        return
    if conversation.assigned_agent_id is None:
        assignment.auto_assign(session, conversation=conversation)


def numbers_by_phone_number_id(session: Session, phone_number_ids: set[str]) -> dict[str, WhatsAppNumber]:
    rows = session.execute(
        select(WhatsAppNumber).where(WhatsAppNumber.phone_number_id.in_(phone_number_ids))
        .execution_options(all_tenants=True)
    ).scalars()
    return {number.phone_number_id: number for number in rows}


def message_for_media(session: Session, *, message_id: uuid.UUID | str) -> tuple[Message, WhatsAppNumber] | None:
    message = session.get(Message, uuid.UUID(str(message_id)))
    if message is None or not message.media_id or message.media_key:
        return None
    return message, session.get(WhatsAppNumber, message.number_id)


def record_media(session: Session, *, message_id: uuid.UUID | str, key: str, mime_type: str | None) -> None:
    message = session.get(Message, uuid.UUID(str(message_id)))
    message.media_key, message.media_error = key, None
    if mime_type:
        message.content = {**message.content, "mime_type": message.content.get("mime_type") or mime_type}


def record_media_error(session: Session, *, message_id: uuid.UUID | str, error: str) -> None:
    session.get(Message, uuid.UUID(str(message_id))).media_error = error[:2000]
