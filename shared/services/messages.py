"""Messages pipeline: composing and queueing outbound messages (sending: `sending.py` and
`send_outcomes.py`; statuses: `statuses.py`).

`queue_message` writes the message `queued` (refusing at once what cannot be sent: a closed
window for free-form text, an ineligible contact, an expired trial) and, after commit, makes sure
its number has a dispatcher (`sending.arm_on_commit`): the sends pool re-checks the same rules at
send time, claims it, sends it and records the outcome.

Statuses coming back from Meta are applied in `shared/services/statuses.py`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from shared.db import get_owned
from shared.audit import audit_on_commit, origin
from shared.errors import ConflictError, IdempotencyKeyReusedError, InvalidInputError, NotFoundError
from shared.models import (
    Contact,
    Conversation,
    Direction,
    Message,
    MessageStatus,
    MessageTemplate,
    Organization,
    SenderType,
)
from shared.models.base import utcnow
from shared.permissions import Role
from shared.phones import normalize_phone
from shared.services import (
    consent,
    contacts,
    conversations,
    media,
    numbers,
    organizations,
    plans,
    send_context,
    sending,
    templates,
)
from shared.whatsapp import outbound

log = structlog.get_logger(__name__)

CALLBACK_PREFIX = "pytake:"
FREE_FORM_TYPES = ("text", "image", "video", "audio", "document", "sticker", "interactive", "reaction",
                   "location", "contacts")
SENDABLE_TYPES = (*FREE_FORM_TYPES, "template")


class MessageNotFoundError(NotFoundError):
    code = "message_not_found"


class WindowClosedError(ConflictError):
    code = "window_closed"


class ContactIneligibleError(ConflictError):
    code = "contact_ineligible"


class MessageInvalidError(InvalidInputError):
    code = "invalid_message"


def callback_data(message_id: uuid.UUID | str) -> str:
    return f"{CALLBACK_PREFIX}{message_id}"


def message_id_from_callback(data: str | None) -> uuid.UUID | None:
    if not data or not data.startswith(CALLBACK_PREFIX):
        return None
    try:
        return uuid.UUID(data[len(CALLBACK_PREFIX):])
    except ValueError:
        return None


def get_message(session: Session, *, org_id: uuid.UUID, message_id: uuid.UUID | str) -> Message:
    return get_owned(session, Message, message_id, org_id=org_id, not_found=MessageNotFoundError)


# -- building and refusing at request time -------------------------------------------------


def approved_templates(session: Session, *, org_id: uuid.UUID, waba_id: str) -> list[dict[str, Any]]:
    """What can still be sent when the window is closed: the approved templates of the number's WABA."""
    rows = session.execute(
        select(MessageTemplate)
        .where(MessageTemplate.organization_id == org_id, MessageTemplate.waba_id == waba_id,
               MessageTemplate.status == "APPROVED")
        .order_by(MessageTemplate.name, MessageTemplate.language)
    ).scalars()
    return [{"id": str(t.id), "name": t.name, "language": t.language, "category": t.category} for t in rows]


def _check_content(org_id: uuid.UUID, message_type: str, content: Any) -> Any:
    """Meta's own body object for the type, checked with the same builders the client uses.

    Media may also name a file uploaded to PyTake (`{"upload": key}`): the send worker uploads it to Meta.
    """
    if not isinstance(content, (dict, list)):
        raise MessageInvalidError(f"`{message_type}` must be an object", details={"field": message_type})
    try:
        if message_type in outbound.MEDIA_TYPES and "upload" in content:
            media.check_upload(org_id=org_id, media_type=message_type, key=str(content["upload"]))
            checked = outbound.media_content(message_type, media_id="pending-upload", caption=content.get("caption"),
                                             filename=content.get("filename"))
            return {**{k: v for k, v in checked.items() if k != "id"}, "upload": content["upload"]}
        if message_type == "text":
            return outbound.text_content(content.get("body", ""), preview_url=bool(content.get("preview_url")))
        if message_type in outbound.MEDIA_TYPES:
            return outbound.media_content(message_type, media_id=content.get("id"), link=content.get("link"),
                                          caption=content.get("caption"), filename=content.get("filename"))
        if message_type == "interactive":
            return _interactive(content)
        if message_type == "reaction":
            return outbound.reaction_content(content.get("message_id", ""), content.get("emoji", ""))
        if message_type == "location":
            return outbound.location_content(_coordinate(content, "latitude"), _coordinate(content, "longitude"),
                                             name=content.get("name"), address=content.get("address"))
        if message_type == "contacts":
            return outbound.contacts_content(content)
    except ValueError as exc:  # the builders' own words: what Meta would refuse, and why
        raise MessageInvalidError(f"{message_type}: {exc}", details={"field": message_type}) from exc
    except KeyError as exc:
        raise MessageInvalidError(f"{message_type}: the field {exc.args[0]!r} is missing",
                                  details={"field": f"{message_type}.{exc.args[0]}"}) from exc
    except (TypeError, AttributeError) as exc:  # a number where text belongs, a string where an object does
        raise MessageInvalidError(
            f"{message_type}: a field has the wrong type (text as strings, objects and lists as Meta documents them)",
            details={"field": message_type}) from exc
    raise MessageInvalidError(f"cannot send messages of type {message_type!r}",
                              details={"allowed": list(SENDABLE_TYPES)})


def _coordinate(content: dict[str, Any], key: str) -> float:
    value = content[key]
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{key} must be a number")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{key} must be a number, got {value!r}") from None


def _interactive(content: dict[str, Any]) -> dict[str, Any]:
    body = (content.get("body") or {}).get("text", "")
    footer = (content.get("footer") or {}).get("text")
    header = content.get("header")
    action = content.get("action") or {}
    if content.get("type") == "button":
        buttons = [(b["reply"]["id"], b["reply"]["title"]) for b in action.get("buttons") or []]
        return outbound.reply_buttons_content(body, buttons, header=header, footer=footer)
    if content.get("type") == "list":
        header_text = header.get("text") if isinstance(header, dict) else header
        return outbound.list_content(body, action.get("button", ""), action.get("sections") or [],
                                     header=header_text, footer=footer)
    raise ValueError("interactive.type must be `button` or `list`")


def _template_content(session: Session, org_id: uuid.UUID, spec: dict[str, Any]) -> tuple[MessageTemplate, dict]:
    template = templates.get_template(session, org_id=org_id, template_id=spec["template_id"])
    components = templates.render(template, spec.get("variables") or {})
    return template, outbound.template_content(template.name, template.language, components)


def _context_wamid(session: Session, context: send_context.SendContext, reply_to: str | None) -> str | None:
    if not reply_to:
        return None
    if reply_to.startswith("wamid."):
        return reply_to
    quoted = get_message(session, org_id=context.organization_id, message_id=reply_to)
    if quoted.conversation_id != context.conversation_id or not quoted.wamid:
        raise MessageInvalidError("reply_to must be a message of this conversation that WhatsApp knows",
                                  details={"reply_to": reply_to})
    return quoted.wamid


def _refusal(session: Session, *, context: send_context.SendContext, message_type: str, template: MessageTemplate | None,
             now: dt.datetime) -> ConflictError | None:
    """Why this message cannot be sent now, or None. The same rules hold at request and at send time."""
    verdict = consent.eligibility(context, consent.category_of(template.category if template else None), unreachable_until=context.unreachable_until, now=now)
    if not verdict.eligible:
        return ContactIneligibleError(verdict.message or "The contact cannot be messaged",
                                      details={"reason": verdict.reason})
    if message_type != "template" and not context.window_open(now):
        return WindowClosedError(
            "The 24-hour customer-service window is closed: only an approved template can be sent until the "
            "customer writes again",
            details={"window_expires_at": context.window_expires_at.isoformat() if context.window_expires_at else None,
                     "templates": approved_templates(session, org_id=context.organization_id,
                                                     waba_id=context.waba_id)},
        )
    return None


def find_by_idempotency_key(session: Session, *, org_id: uuid.UUID, key: str) -> Message | None:
    return session.execute(
        select(Message).where(Message.organization_id == org_id, Message.idempotency_key == key)
    ).scalar_one_or_none()


def queue_reply(session: Session, *, org_id: uuid.UUID, conversation_id: uuid.UUID | str, viewer_id: uuid.UUID,
                viewer_role: Role, spec: dict[str, Any], idempotency_key: str | None = None) -> tuple[Message, bool]:
    """An agent's (or admin's) reply in a conversation they may see."""
    context = send_context.read_for_send(session, org_id=org_id, conversation_id=conversation_id,
                                         viewer_id=viewer_id, viewer_role=viewer_role, idempotency_key=idempotency_key)
    return _queue(session, context=context, spec=spec, sender_type=SenderType.agent, sender_user_id=viewer_id,
                  idempotency_key=idempotency_key)


def queue_message(
    session: Session,
    *,
    org: Organization,
    conversation: Conversation,
    spec: dict[str, Any],
    sender_type: SenderType,
    sender_user_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    campaign_id: uuid.UUID | None = None,
) -> tuple[Message, bool]:
    """`_queue` for a caller holding the conversation's object (kept up to date here)."""
    session.flush()  # the plain SQL below reads the conversation as this transaction left it
    context = send_context.read_for_send(session, org_id=org.id, conversation_id=conversation.id,
                                         idempotency_key=idempotency_key)
    message, created = _queue(session, context=context, spec=spec, sender_type=sender_type,
                              sender_user_id=sender_user_id, idempotency_key=idempotency_key, campaign_id=campaign_id)
    if created:
        set_committed_value(conversation, "last_message_at", message.queued_at)
        set_committed_value(conversation, "last_message_preview", conversations.preview_of(message.type,
                                                                                           message.content))
        session.expire(conversation, ["updated_at"])
    return message, created


def _queue(
    session: Session,
    *,
    context: send_context.SendContext,
    spec: dict[str, Any],
    sender_type: SenderType,
    sender_user_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    campaign_id: uuid.UUID | None = None,
) -> tuple[Message, bool]:
    """The message as `queued` in the conversation `read_for_send` read, and its number's dispatcher armed
    after commit; (message, created).

    With an `idempotency_key` a repeated request returns the message the first one made (`read_for_send`
    found it; one made since by a concurrent request is found when the insert meets its key).
    """
    org_id = context.organization_id
    if idempotency_key and context.idempotency_key_used_by is not None:  # read with the context
        existing = session.get(Message, context.idempotency_key_used_by)
        return _repeated(session, existing, context=context, spec=spec), False
    organizations.check_can_send(context)
    if sender_type != SenderType.system and context.max_monthly_messages is not None:
        # a keyword's confirmation always goes: it is the law, not marketing
        plans.check_limit(session, org=session.get(Organization, org_id), resource="monthly_messages")
    message_type = spec["type"]
    template = None
    if message_type == "template":
        if not spec.get("template_id"):
            raise MessageInvalidError("a template message needs template_id", details={"field": "template_id"})
        template, content = _template_content(session, org_id, spec)
    else:
        content = _check_content(org_id, message_type, spec.get(message_type))
    now = utcnow()
    refusal = _refusal(session, context=context, message_type=message_type, template=template, now=now)
    if refusal is not None:
        raise refusal
    message = Message(
        id=uuid.uuid4(), organization_id=org_id, conversation_id=context.conversation_id,
        contact_id=context.contact_id, number_id=context.number_id, direction=Direction.outbound, type=message_type,
        content=content, status=MessageStatus.queued, queued_at=now, next_attempt_at=now, sender_type=sender_type,
        sender_user_id=sender_user_id, campaign_id=campaign_id, template_id=template.id if template else None,
        idempotency_key=idempotency_key, context_wamid=_context_wamid(session, context, spec.get("reply_to")),
        origin=_origin(), **send_context.UNSET_COLUMNS,
    )
    if not send_context.insert_queued(session, message, preview=conversations.preview_of(message_type, content)):
        first = find_by_idempotency_key(session, org_id=org_id, key=idempotency_key)
        return _repeated(session, first, context=context, spec=spec), False
    sending.arm_on_commit(session, number_id=context.number_id, org_id=org_id)
    return message, True


def _repeated(session: Session, first: Message, *, context: send_context.SendContext, spec: dict[str, Any]) -> Message:
    """The message an earlier request with the same Idempotency-Key made, when this request is the same one;
    a different message under a used key is refused (idempotency_key_reused), never answered with the first."""
    message_type = spec["type"]
    if message_type == "template":
        template, content = _template_content(session, context.organization_id, spec) if spec.get("template_id") \
            else (None, None)
    else:
        template, content = None, _check_content(context.organization_id, message_type, spec.get(message_type))
    asked = (message_type, content, template.id if template else None, context.conversation_id,
             _context_wamid(session, context, spec.get("reply_to")))
    if asked != (first.type, first.content, first.template_id, first.conversation_id, first.context_wamid):
        raise IdempotencyKeyReusedError(
            "This Idempotency-Key was used for another message; send a new message with a new key",
            details={"message_id": str(first.id)})
    return first


def _count_outbound(session: Session, message: Message, at: dt.datetime) -> None:
    conversation = session.get(Conversation, message.conversation_id, with_for_update=True)
    conversations.note_outbound(conversation, message, at=at)
    contact = session.get(Contact, message.contact_id)
    contact.first_outbound_at = contact.first_outbound_at or at
    contact.last_outbound_at = at
    contact.messages_out_count += 1


def _origin() -> dict[str, Any] | None:
    came_from = origin()
    return came_from if any(came_from.values()) else None


def timeline_queued(session: Session, message: Message) -> None:
    """The `messages.queued` line, at the time it was queued and with the request it came from. The sends
    pool writes it when it first takes the message, with that batch's other lines: writing it from the
    request cost the send request an event-store round trip, a third of its time."""
    _timeline(session, message, "queued", actor_id=message.sender_user_id,
              data={"type": message.type, "sender_type": message.sender_type.value},
              occurred_at=message.queued_at, came_from=message.origin or {})


def _timeline(session: Session, message: Message, step: str, *, actor_id: uuid.UUID | None = None,
              data: dict[str, Any] | None = None, **when_and_where: Any) -> None:
    """One line in the message's and in its conversation's timeline, once per step (redeliveries add none)."""
    for subject_type, subject_id in (("message", message.id), ("conversation", message.conversation_id)):
        audit_on_commit(session, org_id=message.organization_id, action=f"messages.{step}", subject_type=subject_type,
                        subject_id=subject_id, actor_id=actor_id,
                        data={**(data or {}), "message_id": str(message.id)},
                        event_id=f"message:{message.id}:{step}:{subject_type}", **when_and_where)


def conversation_for_recipient(session: Session, *, org: Organization, number_id: uuid.UUID,
                               to: str | None = None, contact_id: uuid.UUID | None = None) -> Conversation:
    """The conversation a direct send goes into: the contact's thread on that number, opened if new."""
    number = numbers.get_number(session, org_id=org.id, number_id=number_id)
    if contact_id is not None:
        contact = contacts.get_contact(session, org_id=org.id, contact_id=contact_id)
    else:
        phone = normalize_phone(to or "", default_country=org.default_country)
        contact = contacts.find_by_phone(session, org_id=org.id, identity_key=phone.identity_key)
        if contact is None:
            contact = contacts.create_contact(session, org=org, phone=phone.e164)
    return conversations.get_or_open(session, org_id=org.id, number_id=number.id, contact_id=contact.id)


def record_media_id(session: Session, *, message_id: uuid.UUID, media_id: str) -> None:
    session.execute(update(Message).where(Message.id == message_id).values(media_id=media_id)
                    .execution_options(synchronize_session=False))


def _count_monthly_messages(session: Session, org_id: uuid.UUID) -> int:
    return session.execute(
        select(func.count()).select_from(Message)
        .where(Message.organization_id == org_id, Message.direction == Direction.outbound,
               Message.created_at >= plans.month_start())
    ).scalar_one()


plans.register_usage_counter("monthly_messages", _count_monthly_messages)
