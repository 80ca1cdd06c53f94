"""Statuses pipeline: Meta's status webhooks moving outbound messages forward.

Applied by wamid (or by our id in `biz_opaque_callback_data` when the status beat our own record of
the send), forward only (sent < delivered < read); `failed` only overrides a message not yet
delivered, and a `sent` arriving after it only fills in its time; every applied transition goes to
the event log once. Meta's `pricing` and `conversation` objects are kept on the message from any
matched status that carries them (_record_billing).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.audit import audit_on_commit
from shared.models import Direction, Message, MessageStatus, WhatsAppNumber
from shared.services import campaign_feedback, consent, messages
from shared.whatsapp.payloads import MessageStatus as StatusUpdate

STATUS_RANK = {MessageStatus.sent: 1, MessageStatus.delivered: 2, MessageStatus.read: 3}
# Where a failure stands for the steps after it: a `sent` Meta delivers after the failure is older news (it
# fills its time, the failure stays); delivered and read still win over it (multi-device, reference §6).
FAILED_RANK = STATUS_RANK[MessageStatus.sent]
_STEP_COLUMNS = {MessageStatus.sent: "sent_at", MessageStatus.delivered: "delivered_at", MessageStatus.read: "read_at"}
NOT_YET_DELIVERED = (MessageStatus.queued, MessageStatus.sending, MessageStatus.unknown, MessageStatus.sent)


def _status_target(session: Session, number: WhatsAppNumber, status: StatusUpdate) -> Message | None:
    found = session.execute(
        select(Message).where(Message.wamid == status.wamid, Message.organization_id == number.organization_id)
        .with_for_update()
    ).scalar_one_or_none()
    if found is not None:
        return found
    ours = messages.message_id_from_callback(status.biz_opaque_callback_data)
    if ours is None:
        return None
    found = session.execute(
        select(Message).where(Message.id == ours, Message.organization_id == number.organization_id,
                              Message.direction == Direction.outbound).with_for_update()
    ).scalar_one_or_none()
    if found is not None and found.wamid is None:
        found.wamid = status.wamid  # the status came before our own record of the send (or the send timed out)
    return found


def apply_status(session: Session, *, number: WhatsAppNumber, status: StatusUpdate) -> bool:
    """Move a message forward by one status webhook item; False when it changes nothing."""
    message = _status_target(session, number, status)
    if message is None:
        audit_on_commit(session, org_id=number.organization_id, action="messages.status_unmatched",
                        subject_type="wamid", subject_id=status.wamid, actor_id=None,
                        data={"status": status.status}, event_id=f"status:{status.wamid}:{status.status}")
        return False
    _record_billing(message, status)  # whatever the status does to the message, even a late or repeated one
    name = "read" if status.status == "played" else status.status
    at = status.timestamp
    if name == "failed":
        if message.status not in NOT_YET_DELIVERED:
            return False  # delivered wins over a late failure (multi-device)
        error = status.errors[0] if status.errors else None
        message.status = MessageStatus.failed
        message.failed_at = at
        message.error_code = str(error.code) if error and error.code is not None else "failed"
        message.error_message = (error.details or error.message or error.title) if error else None
        consent.note_undeliverable(session, conversation_id=message.conversation_id, code=message.error_code, at=at)
        campaign_feedback.note_failed(session, message)
    elif name in ("sent", "delivered", "read"):
        new = MessageStatus(name)
        if STATUS_RANK[new] <= _rank(message.status):
            return _fill_late(message, new, at)
        was_counted = message.status in (MessageStatus.sent, MessageStatus.delivered, MessageStatus.read)
        # A later step implies the earlier ones Meta skipped or has not sent yet (read before delivered).
        implied = [step.value for step, column in _STEP_COLUMNS.items()
                   if STATUS_RANK[step] < STATUS_RANK[new] and getattr(message, column) is None]
        message.status = new
        message.sent_at = message.sent_at or at
        if STATUS_RANK[new] >= STATUS_RANK[MessageStatus.delivered]:
            message.delivered_at = message.delivered_at or at
        if new == MessageStatus.read:
            message.read_at = at
        message.error_code = message.error_message = None
        if not was_counted:
            messages._count_outbound(session, message, at)
        for step in implied:
            messages._timeline(session, message, step, data={"wamid": status.wamid, "implied_by": name})
    else:
        return False
    messages._timeline(session, message, name, data={"wamid": status.wamid,
                                            "error_code": message.error_code if name == "failed" else None})
    session.flush()
    return True


def _rank(status: MessageStatus) -> int:
    return FAILED_RANK if status == MessageStatus.failed else STATUS_RANK.get(status, 0)


def _record_billing(message: Message, status: StatusUpdate) -> None:
    """Meta's `pricing` and `conversation` objects, kept on the message for the API and cost reports.

    A status carrying one replaces what an earlier one left; a status carrying none (`read`, `failed`, often)
    keeps it. `expiration_timestamp` comes only on a conversation's first status, so a later object for the
    same conversation without it keeps the one recorded.
    """
    if status.pricing is not None:
        pricing = status.pricing
        message.pricing = {"billable": pricing.billable, "pricing_model": pricing.pricing_model,
                           "category": pricing.category, "type": pricing.type}
    if status.conversation is not None:
        conversation, known = status.conversation, message.meta_conversation or {}
        expires_at = conversation.expires_at.isoformat() if conversation.expires_at else None
        if expires_at is None and conversation.id is not None and known.get("id") == conversation.id:
            expires_at = known.get("expires_at")
        message.meta_conversation = {"id": conversation.id, "origin_type": conversation.origin_type,
                                     "expires_at": expires_at}


def _fill_late(message: Message, step: MessageStatus, at) -> bool:
    """A status behind the message's (delivered after read): its own time fills its step, the status stays.

    A later step implied the earlier ones with its own time; Meta's own time for the step is the earlier,
    true one. False when it changes nothing (a repeat)."""
    column = _STEP_COLUMNS[step]
    current = getattr(message, column)
    if at is None or (current is not None and current <= at):
        return False
    setattr(message, column, at)
    return True
