"""Inbound pipeline: what customers send, from `messages` webhook changes to routed conversations.

Set-wise: the messages of a whole drained batch (one payload or many) are processed together,
per organization: contacts upserted in one statement (identity rules of the contacts services; a message
from a number its customer has left, sent up to Meta's user_changed_number, is that customer's),
conversations found or opened in one (a closed one reopens) and locked in id order, messages
inserted in one (unique wamid, ON CONFLICT DO NOTHING: a repeat is dropped here, so it is routed
once too), then, in arrival order, the 24 h window moved forward, counters counted, opt-out and
opt-in keywords recorded in the consent ledger at the customer's time with a confirmation reply in
the organization's language (shared/languages.py, messages.queue_message; a keyword Meta delivers
after a later one is recorded but changes and answers nothing),
media fetched by a task of its own. Each conversation is then handed, once per batch, to its bot
(a live bot session, or the number's active published default chatbot: one `bots.step` after commit,
shared/services/bot_runtime.py) or else to its agent (automatic assignment); a blocked contact's
messages are stored but not routed. Statuses in the same changes go to the status handling
(shared/services/statuses.py).

Order: the caller (shared/services/webhooks.py) applies batches one at a time in arrival order,
and the messages are inserted in that order, so their `sequence` is the order they came in and a
customer's two quick messages are stored and routed in that order. No lock over the number is
taken here; the organization's assignment lock only when an agent can actually be given.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from dataclasses import dataclass

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.audit import audit_on_commit
from shared.errors import DomainError
from shared.languages import keyword_confirmation
from shared.models import (
    ConsentAction,
    ConsentScope,
    ConsentSource,
    Contact,
    Conversation,
    ConversationOwner,
    Direction,
    Message,
    MessageStatus,
    Organization,
    SenderType,
    WhatsAppNumber,
)
from shared.models.base import utcnow
from shared.queueing.names import BOT_STEP, FETCH_MEDIA
from shared.queueing.publish import enqueue_on_commit
from shared.services import (
    alerts,
    assignment,
    bot_runtime,
    button_replies,
    consent,
    contacts,
    conversations,
    messages,
    statuses,
)
from shared.settings import get_settings
from shared.whatsapp.outbound import MEDIA_TYPES
from shared.whatsapp.payloads import InboundMessage, MessagesChange, WebhookError

log = structlog.get_logger(__name__)

INSERT_CHUNK = 2000  # messages per INSERT: 16 parameters each, PostgreSQL allows 65,535 per statement
# Every supported language's words, whatever the organization's language: a Brazilian customer of an
# English-speaking organization who writes PARAR is opted out. The confirmation names one of them
# in the organization's language (shared/languages.py).
DEFAULT_OPT_OUT_KEYWORDS = ("STOP", "PARAR", "SAIR", "CANCELAR", "UNSUBSCRIBE", "BAJA")
DEFAULT_OPT_IN_KEYWORDS = ("START", "VOLTAR", "ALTA")


@dataclass(frozen=True)
class RoutedChange:
    """A `messages` change and the number of ours it names."""

    number: WhatsAppNumber
    change: MessagesChange


@dataclass(frozen=True)
class _Arrival:
    number: WhatsAppNumber
    message: InboundMessage
    profile_name: str | None


def process_messages_change(session: Session, *, number: WhatsAppNumber, change: MessagesChange) -> None:
    process_changes(session, [RoutedChange(number=number, change=change)])


def process_changes(session: Session, changes: list[RoutedChange]) -> None:
    """Store and route every inbound message of `changes` (in arrival order), then apply their statuses."""
    by_org: dict[uuid.UUID, list[_Arrival]] = {}
    for routed in changes:
        profiles = {contact.wa_id: contact.profile_name for contact in routed.change.contacts if contact.wa_id}
        user_ids = {contact.wa_id: contact.user_id for contact in routed.change.contacts if contact.wa_id}
        for message in routed.change.messages:
            if message.type == "system":  # before the batch's messages: the next ones may come from the new number
                _system_notice(session, number=routed.number, message=message)
                continue
            if message.type == "reaction":  # on the message it reacts to: no turn, no unread, no routing
                _react(session, number=routed.number, message=message)
                continue
            message = _with_both_ids(session, routed.number, message, user_ids)
            if not message.from_wa_id:
                # A user known only by a business-scoped id we have never seen with a phone: no contact to key to.
                log.warning("inbound.no_wa_id", wamid=message.wamid, user_id=message.from_user_id)
                continue
            by_org.setdefault(routed.number.organization_id, []).append(
                _Arrival(routed.number, message, profiles.get(message.from_wa_id)))
    for org_id, arrivals in by_org.items():
        _record_many(session, org=session.get(Organization, org_id), arrivals=arrivals)
    for routed in changes:
        for status in routed.change.statuses:
            statuses.apply_status(session, number=routed.number, status=status)
        for error in routed.change.errors:  # `value.errors`: about the number or the app, with no message
            _alert_webhook_error(session, number=routed.number, error=error)


def _with_both_ids(session: Session, number: WhatsAppNumber, message: InboundMessage,
                   user_ids: dict[str, str | None]) -> InboundMessage:
    """The message with its sender's wa_id and business-scoped user id, whichever of them Meta left out and we
    know: from the payload's `contacts`, or from the contact that already carries the user id."""
    user_id = message.from_user_id or user_ids.get(message.from_wa_id or "")
    wa_id = message.from_wa_id or (contacts.wa_id_for_user_id(session, org_id=number.organization_id,
                                                                user_id=user_id) if user_id else None)
    if (wa_id, user_id) == (message.from_wa_id, message.from_user_id):
        return message
    return dataclasses.replace(message, from_wa_id=wa_id, from_user_id=user_id)


FREE_ENTRY_HOURS = 72
_REFERRAL_FIELDS = ("source_type", "source_id", "source_url", "headline", "body", "media_type", "ctwa_clid")


def _note_referral(conversation: Conversation, message: InboundMessage) -> None:
    """A first message from a click-to-WhatsApp ad or post: the conversation records where it came from, and
    the window Meta opens free of charge (72 hours from the customer's message)."""
    if not message.referral:
        return
    conversation.referral = {key: message.referral[key] for key in _REFERRAL_FIELDS if key in message.referral}
    conversation.referral["at"] = message.timestamp.isoformat()
    conversation.free_entry_until = message.timestamp + dt.timedelta(hours=FREE_ENTRY_HOURS)


def _react(session: Session, *, number: WhatsAppNumber, message: InboundMessage) -> None:
    """The customer's emoji on one of the conversation's messages; an empty one takes it back. A reaction older
    than the one recorded (Meta redelivers out of order) changes nothing: a removal is kept with its time for
    that, so the reaction it took back cannot return when it arrives late."""
    reaction = message.content if isinstance(message.content, dict) else {}
    target = session.execute(select(Message).where(
        Message.organization_id == number.organization_id, Message.number_id == number.id,
        Message.wamid == reaction.get("message_id")).with_for_update()).scalar_one_or_none()
    if target is None:
        log.info("inbound.reaction_to_unknown_message", wamid=message.wamid, to=reaction.get("message_id"))
        return
    at = message.timestamp.isoformat()
    if target.reaction is not None and target.reaction.get("at", "") > at:
        return
    target.reaction = {"emoji": reaction.get("emoji") or "", "at": at}


def _system_notice(session: Session, *, number: WhatsAppNumber, message: InboundMessage) -> None:
    """Meta's notices about the customer, not their words: never stored as a turn, counted, routed or answered.
    A changed number moves the contact (its history and consent stay with it) to the new wa_id; a repeat of the
    notice changes nothing (shared/services/contacts.change_number)."""
    notice = message.content if isinstance(message.content, dict) else {}
    new_wa_id = notice.get("wa_id")
    if notice.get("type") == "user_changed_number" and message.from_wa_id and new_wa_id:
        contact = contacts.change_number(session, org_id=number.organization_id, old_wa_id=message.from_wa_id,
                                         new_wa_id=str(new_wa_id), at=message.timestamp)
        if contact is not None:
            audit_on_commit(session, org_id=number.organization_id, action="contacts.number_changed",
                            subject_type="contact", subject_id=contact.id, actor_id=None,
                            data={"from_wa_id": message.from_wa_id, "to_wa_id": contact.wa_id,
                                  "notice": notice.get("body")}, event_id=f"system:{message.wamid}")
        return
    log.info("inbound.system_notice", kind=notice.get("type"), wamid=message.wamid)


def _alert_webhook_error(session: Session, *, number: WhatsAppNumber, error: WebhookError) -> None:
    log.warning("inbound.webhook_error", number_id=str(number.id), code=error.code, title=error.title)
    audit_on_commit(session, org_id=number.organization_id, action="alerts.webhook_error", subject_type="number",
                    subject_id=number.id, actor_id=None,
                    data={"code": error.code, "title": error.title, "message": error.message,
                          "details": error.details, "href": error.href})
    alerts.raise_alert(session, org_id=number.organization_id, kind="webhook_error", subject_type="number",
                       subject_id=number.id, message=f"Meta reported {error.code}: {error.title or error.message or ''}",
                       data={"code": error.code, "title": error.title, "details": error.details})


def _error_columns(message: InboundMessage) -> dict:
    """Meta's `messages[].errors` (an unsupported type, say): the first one, stored with the message (every row
    of a multi-row INSERT names the same columns)."""
    if not message.errors:
        return {"error_code": None, "error_message": None}
    error = message.errors[0]
    text = " - ".join(part for part in (error.title, error.details or error.message) if part)
    return {"error_code": str(error.code) if error.code is not None else "error", "error_message": text[:2000] or None}


def _context_columns(message: InboundMessage) -> dict:
    """Meta's `context`: a reply names the quoted message (`id`); a forward carries only its flags and is never
    taken for a reply, whatever else its context holds."""
    context = message.context
    if context is None:
        return {"context_wamid": None, "forwarded": False, "frequently_forwarded": False}
    forward = context.forwarded or context.frequently_forwarded
    return {"context_wamid": None if forward else context.quoted_message_id,
            "forwarded": context.forwarded, "frequently_forwarded": context.frequently_forwarded}


def _content_of(message: InboundMessage) -> dict:
    return message.content if isinstance(message.content, dict) else {"items": message.content}


def _from_numbers_now(session: Session, *, org_id: uuid.UUID, arrivals: list[_Arrival]) -> list[_Arrival]:
    """A message sent from a number its customer has since left, up to the change (Meta's times: the notice reached
    us first), is the changed contact's, sent from the number it has now; its stale profile name is left out. After
    the change, the number may be someone else's: their messages stay theirs."""
    former = contacts.former_numbers(session, org_id=org_id,
                                     wa_ids={arrival.message.from_wa_id for arrival in arrivals})
    if not former:
        return arrivals
    moved = []
    for arrival in arrivals:
        change = former.get(arrival.message.from_wa_id)
        if change is not None and arrival.message.timestamp <= change.changed_at:
            arrival = _Arrival(arrival.number, dataclasses.replace(arrival.message, from_wa_id=change.wa_id_now), None)
        moved.append(arrival)
    return moved


def _record_many(session: Session, *, org: Organization, arrivals: list[_Arrival]) -> list[Message]:
    """Store one organization's arrivals set-wise and route them; the messages stored (repeats dropped)."""
    arrivals = _from_numbers_now(session, org_id=org.id, arrivals=arrivals)
    profiles: dict[str, str | None] = {}
    for arrival in arrivals:  # the latest non-empty profile name wins, as one upsert per message left it
        profiles[arrival.message.from_wa_id] = arrival.profile_name or profiles.get(arrival.message.from_wa_id)
    contact_of = contacts.upsert_many_from_whatsapp(session, org_id=org.id, profiles=profiles)
    contacts.note_user_ids(session, org_id=org.id, user_ids={  # only those not known yet: no statement otherwise
        contact_of[arrival.message.from_wa_id].id: arrival.message.from_user_id for arrival in arrivals
        if arrival.message.from_user_id and contact_of[arrival.message.from_wa_id].user_id != arrival.message.from_user_id})
    conversation_of = conversations.get_or_open_many(session, org_id=org.id, pairs={
        (arrival.number.id, contact_of[arrival.message.from_wa_id].id) for arrival in arrivals})
    now = utcnow()
    rows, seen = [], set()
    for arrival in arrivals:
        message = arrival.message
        if message.wamid in seen:
            continue  # the same message twice in one batch: ON CONFLICT would drop it anyway
        seen.add(message.wamid)
        contact = contact_of[message.from_wa_id]
        content = _content_of(message)
        rows.append({
            "organization_id": org.id, "conversation_id": conversation_of[(arrival.number.id, contact.id)].id,
            "contact_id": contact.id, "number_id": arrival.number.id, "direction": Direction.inbound,
            "type": message.type, "content": content, "wamid": message.wamid, "status": MessageStatus.received,
            "sender_type": SenderType.customer, "occurred_at": message.timestamp,
            **_context_columns(message), "from_user_id": message.from_user_id,
            "referral": message.referral, "media_id": content.get("id") if message.type in MEDIA_TYPES else None,
            "routed_at": now,  # blocked contacts' messages too: stored, handled, never handed to anyone
            **_error_columns(message),
        })
    # INSERTs in arrival order (the identity gives `sequence` in that order), in chunks that stay far below
    # PostgreSQL's 65,535 parameters per statement.
    inserted = []
    for start in range(0, len(rows), INSERT_CHUNK):
        inserted += session.execute(
            insert(Message).values(rows[start:start + INSERT_CHUNK])
            .on_conflict_do_nothing(index_elements=[Message.wamid], index_where=Message.wamid.is_not(None))
            .returning(Message.id)
        ).scalars().all()
    if len(inserted) < len(rows):
        log.info("inbound.duplicates", count=len(rows) - len(inserted))
    if not inserted:
        return []
    stored = list(session.execute(
        select(Message).where(Message.id.in_(inserted)).order_by(Message.sequence)
    ).scalars())
    by_wamid = {arrival.message.wamid: arrival for arrival in reversed(arrivals)}
    touched: dict[uuid.UUID, tuple[Conversation, Contact]] = {}
    for message in stored:
        conversation = conversation_of[(message.number_id, message.contact_id)]
        contact = contact_of[by_wamid[message.wamid].message.from_wa_id]
        conversations.note_inbound(conversation, message, received_at=now)
        _note_referral(conversation, by_wamid[message.wamid].message)
        contact.first_inbound_at = contact.first_inbound_at or now
        contact.last_inbound_at = now
        contact.messages_in_count += 1
        if message.media_id:
            enqueue_on_commit(session, FETCH_MEDIA, message_id=str(message.id), org_id=str(org.id))
        _apply_keyword(session, org=org, contact=contact, conversation=conversation,
                       message=by_wamid[message.wamid].message)
        touched[conversation.id] = (conversation, contact)
    no_agent_for: set[uuid.UUID | None] = set()  # departments found without an agent with room, this batch
    routable = [conversation for conversation, contact in touched.values()
                if not contact.is_blocked and conversation.assigned_agent_id is None]
    to_bot = bot_runtime.conversations_for_bots(
        session, org_id=org.id, conversations=routable,
        numbers={arrival.number.id: arrival.number for arrival in arrivals})
    for conversation in routable:
        if conversation.id in to_bot:  # its bot answers first, one step per conversation after commit
            conversation.owner = ConversationOwner.bot
            # after the burst window: a customer still typing gets one answer, to all they wrote
            enqueue_on_commit(session, BOT_STEP, countdown=get_settings().bot_burst_seconds or None,
                              org_id=str(org.id), conversation_id=str(conversation.id))
            continue
        if conversation.department_id in no_agent_for:
            assignment.queue_unassigned(session, conversation=conversation)
        elif assignment.auto_assign(session, conversation=conversation) is None:
            no_agent_for.add(conversation.department_id)
    session.flush()
    return stored


def record_inbound(session: Session, *, org: Organization, number: WhatsAppNumber, message: InboundMessage,
                   profile_name: str | None) -> Message | None:
    """Store one inbound message and route it; None when its wamid was seen before or it has no wa_id."""
    if not message.from_wa_id:
        log.warning("inbound.no_wa_id", wamid=message.wamid, user_id=message.from_user_id)
        return None
    stored = _record_many(session, org=org, arrivals=[_Arrival(number, message, profile_name)])
    return stored[0] if stored else None


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


def _apply_keyword(session: Session, *, org: Organization, contact: Contact, conversation: Conversation,
                   message: InboundMessage) -> None:
    if button_replies.apply(session, org=org, contact=contact, conversation=conversation, message=message):
        return
    text = (_text_of(message) or "").strip().upper()
    if not text:
        return
    if text in _keywords(org, "opt_out_keywords", DEFAULT_OPT_OUT_KEYWORDS):
        action = ConsentAction.opt_out
    elif text in _keywords(org, "opt_in_keywords", DEFAULT_OPT_IN_KEYWORDS):
        action = ConsentAction.opt_in
    else:
        return
    reply = keyword_confirmation(action.value, language=org.language, settings=org.settings)
    superseded = consent.superseded(session, contact=contact, scope=ConsentScope.all, at=message.timestamp)
    consent.record_consent(session, contact=contact, action=action, scope=ConsentScope.all,
                           source=ConsentSource.keyword, actor="customer", occurred_at=message.timestamp,
                           evidence=f"{message.type} message {message.wamid}: {text}")
    log.info("inbound.consent_keyword", contact_id=contact.id, action=action.value, superseded=superseded)
    if superseded:  # a later keyword (Meta delivered this one late) was answered: this answer would contradict it
        return
    # The confirmation is a service reply inside the window the keyword itself just opened.
    try:
        messages.queue_message(
            session, org=org, conversation=conversation, spec={"type": "text", "text": {"body": reply}},
            sender_type=SenderType.system, idempotency_key=f"keyword-reply:{message.wamid}",
        )
    except DomainError as exc:  # blocked contact, ended trial: the consent change stands, no reply goes
        log.info("inbound.keyword_reply_refused", contact_id=contact.id, code=exc.code)


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


MEDIA_AWAITS_CREDENTIALS = "awaiting new credentials"
MEDIA_KEPT_DAYS = 7  # how long Meta keeps an inbound message's media


def media_awaiting_credentials(session: Session, *, number_id: uuid.UUID) -> list[uuid.UUID]:
    """The number's inbound media refused for its token (190), still within the days Meta keeps them."""
    return list(session.execute(
        select(Message.id).where(Message.number_id == number_id, Message.direction == Direction.inbound,
                                 Message.media_key.is_(None), Message.media_id.is_not(None),
                                 Message.media_error.startswith(MEDIA_AWAITS_CREDENTIALS),
                                 Message.created_at > utcnow() - dt.timedelta(days=MEDIA_KEPT_DAYS))
        .execution_options(all_tenants=True)
    ).scalars())


def record_media_error(session: Session, *, message_id: uuid.UUID | str, error: str,
                       awaits_credentials: bool = False) -> None:
    """Why the message has no file; `awaits_credentials`: refused for the number's token, fetched again when the
    number gets a new one (media_awaiting_credentials)."""
    text = f"{MEDIA_AWAITS_CREDENTIALS}: {error}" if awaits_credentials else error
    session.get(Message, uuid.UUID(str(message_id))).media_error = text[:2000]
