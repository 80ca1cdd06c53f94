"""Conversations pipeline: the inbox. Finding or opening a customer's thread, listing, status and priority.

A conversation is the one thread between a contact and a number: it is opened by the first
message either way and reopened (never duplicated) when the customer writes after it closed.
Who works it (assignment) lives in shared/services/assignment.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, exists, false, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db import get_owned
from shared.errors import InvalidInputError, NotFoundError
from shared.models import (
    OPEN_STATUSES,
    BotEndReason,
    Contact,
    Conversation,
    ConversationOwner,
    ConversationStatus,
    Direction,
    Message,
    Priority,
    Tag,
    User,
    WhatsAppNumber,
    contact_tags,
)
from shared.models.base import utcnow
from shared.permissions import Role
from shared.services import bot_sessions

WINDOW = dt.timedelta(hours=24)
PREVIEW_CHARS = 200


class ConversationNotFoundError(NotFoundError):
    code = "conversation_not_found"


class InvalidCursorError(InvalidInputError):
    code = "invalid_cursor"


def get_or_open(session: Session, *, org_id: uuid.UUID, number_id: uuid.UUID, contact_id: uuid.UUID) -> Conversation:
    """The thread for (number, contact), created if new, locked for this transaction.

    INSERT ... ON CONFLICT keeps two workers from opening two threads for one customer; the row
    lock then serializes everything that changes this conversation.
    """
    session.execute(
        insert(Conversation)
        .values(organization_id=org_id, number_id=number_id, contact_id=contact_id)
        .on_conflict_do_nothing(index_elements=[Conversation.number_id, Conversation.contact_id])
    )
    return session.execute(
        select(Conversation)
        .where(Conversation.number_id == number_id, Conversation.contact_id == contact_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def get_conversation(session: Session, *, org_id: uuid.UUID, conversation_id: uuid.UUID | str,
                     for_update: bool = False) -> Conversation:
    return get_owned(session, Conversation, conversation_id, org_id=org_id, not_found=ConversationNotFoundError,
                     for_update=for_update)


def preview_of(message_type: str, content: Any) -> str:
    """A line for the inbox list: the text when there is one, else the type in brackets."""
    if isinstance(content, dict):
        for key in ("body", "caption", "text", "name", "button_reply", "list_reply"):
            value = content.get(key)
            if isinstance(value, dict):
                value = value.get("text") or value.get("title")
            if isinstance(value, str) and value:
                return value[:PREVIEW_CHARS]
    return f"[{message_type}]"


def note_inbound(conversation: Conversation, message: Message, *, received_at: dt.datetime) -> None:
    """An inbound message reopens the thread, moves the 24 h window forward and counts as unread. It is the
    preview unless the customer wrote something after it (Meta delivered it late)."""
    if conversation.status not in OPEN_STATUSES:
        conversation.status = ConversationStatus.open
        conversation.resolved_at = None
        conversation.first_response_at = None
    sent_at = message.occurred_at or received_at
    expires = sent_at + WINDOW
    if conversation.window_expires_at is None or expires > conversation.window_expires_at:
        conversation.window_expires_at = expires
    if conversation.last_inbound_at is None or sent_at >= conversation.last_inbound_at:
        conversation.last_inbound_at = sent_at
        conversation.last_message_preview = preview_of(message.type, message.content)
    conversation.last_message_at = received_at
    conversation.unread_count += 1
    conversation.messages_in_count += 1


def note_outbound(conversation: Conversation, message: Message, *, at: dt.datetime) -> None:
    """Our own messages never open or extend the window (reference §5)."""
    conversation.last_outbound_at = at
    conversation.last_message_at = at
    conversation.last_message_preview = preview_of(message.type, message.content)
    conversation.messages_out_count += 1
    if message.sender_user_id is not None and conversation.first_response_at is None:
        conversation.first_response_at = at


# -- the inbox ------------------------------------------------------------------------------


@dataclass
class ConversationPage:
    items: list[Conversation]
    next_cursor: str | None


def encode_time_cursor(stamp: dt.datetime, ident: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(json.dumps([stamp.isoformat(), str(ident)]).encode()).decode()


def decode_time_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        stamp, ident = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return dt.datetime.fromisoformat(stamp), uuid.UUID(ident)
    except (ValueError, TypeError) as exc:
        raise InvalidCursorError("cursor is not one this API gave out") from exc


def visible_to(user: User) -> Any:
    """What a user's role and departments let them see: agents their own, their departments' and the unclaimed."""
    if user.role != Role.agent:
        return None
    departments = [department.id for department in user.departments]
    return or_(
        Conversation.assigned_agent_id == user.id,
        Conversation.department_id.in_(departments) if departments else false(),
        and_(Conversation.assigned_agent_id.is_(None), Conversation.department_id.is_(None)),
    )


def _filtered(query: Select, *, viewer: User, spec: dict[str, Any]) -> Select:
    visibility = visible_to(viewer)
    if visibility is not None:
        query = query.where(visibility)
    if spec.get("status"):
        query = query.where(Conversation.status.in_(spec["status"]))
    if spec.get("priority"):
        query = query.where(Conversation.priority.in_(spec["priority"]))
    if spec.get("owner"):
        query = query.where(Conversation.owner.in_(spec["owner"]))
    if spec.get("assigned_agent_id"):
        query = query.where(Conversation.assigned_agent_id == spec["assigned_agent_id"])
    if spec.get("department_id"):
        query = query.where(Conversation.department_id == spec["department_id"])
    if spec.get("number_id"):
        query = query.where(Conversation.number_id == spec["number_id"])
    if spec.get("unassigned") is not None:
        test = Conversation.assigned_agent_id.is_(None)
        query = query.where(test if spec["unassigned"] else ~test)
    if spec.get("has_unread") is not None:
        query = query.where(Conversation.unread_count > 0 if spec["has_unread"] else Conversation.unread_count == 0)
    if spec.get("window_open") is not None:
        now = utcnow()
        is_open = and_(Conversation.window_expires_at.is_not(None), Conversation.window_expires_at > now)
        query = query.where(is_open if spec["window_open"] else ~is_open)
    if spec.get("tag"):
        query = query.where(exists().where(
            contact_tags.c.contact_id == Conversation.contact_id,
            contact_tags.c.tag_id == Tag.id,
            Tag.name == spec["tag"],
            Tag.organization_id == Conversation.organization_id,
        ))
    return query


def list_conversations(session: Session, *, org_id: uuid.UUID, viewer: User, spec: dict[str, Any],
                       cursor: str | None = None, limit: int = 50) -> ConversationPage:
    """Newest activity first, keyset-paginated on (last activity, id)."""
    activity = Conversation.last_message_at
    query = _filtered(select(Conversation).where(Conversation.organization_id == org_id), viewer=viewer, spec=spec)
    query = query.where(activity.is_not(None))
    if cursor:
        stamp, ident = decode_time_cursor(cursor)
        query = query.where(tuple_(activity, Conversation.id) < tuple_(stamp, ident))
    rows = list(session.execute(query.order_by(activity.desc(), Conversation.id.desc()).limit(limit + 1)).scalars())
    more = len(rows) > limit
    items = rows[:limit]
    next_cursor = encode_time_cursor(items[-1].last_message_at, items[-1].id) if more and items else None
    return ConversationPage(items, next_cursor)


def agent_sees(*, agent_id: uuid.UUID, assigned_agent_id: uuid.UUID | None, department_id: uuid.UUID | None,
               in_agents_department: bool) -> bool:
    """An agent sees their own conversations, their departments' and the unclaimed ones."""
    return (assigned_agent_id == agent_id or in_agents_department
            or (assigned_agent_id is None and department_id is None))


def check_visible(conversation: Conversation, viewer: User) -> None:
    """An agent asking for a conversation outside what they may see gets the same 404 as a missing one."""
    if viewer.role != Role.agent:
        return
    departments = {department.id for department in viewer.departments}
    if not agent_sees(agent_id=viewer.id, assigned_agent_id=conversation.assigned_agent_id,
                      department_id=conversation.department_id,
                      in_agents_department=conversation.department_id in departments):
        raise ConversationNotFoundError(f"conversation {conversation.id} not found")


def update_conversation(session: Session, *, conversation: Conversation, changes: dict[str, Any]) -> Conversation:
    if "priority" in changes:
        conversation.priority = Priority(changes["priority"])
    if "status" in changes:
        set_status(session, conversation=conversation, status=ConversationStatus(changes["status"]))
    session.flush()
    return conversation


def set_status(session: Session, *, conversation: Conversation, status: ConversationStatus) -> Conversation:
    """Closing resolves the thread and leaves the assignment queue; reopening puts it back to work."""
    now = utcnow()
    if status in (ConversationStatus.closed, ConversationStatus.archived):
        if conversation.resolved_at is None:
            conversation.resolved_at = now
        conversation.waiting_since = None
        # A closed conversation lets its bot start again on the next message: its bot session (waiting, or
        # handed off to agents) ends, and an unassigned one belongs to nobody.
        bot_sessions.end_live(session, conversation_id=conversation.id, reason=BotEndReason.closed)
        if conversation.assigned_agent_id is None:
            conversation.owner = ConversationOwner.none
    elif conversation.status not in OPEN_STATUSES:
        conversation.resolved_at = None
        if conversation.assigned_agent_id is None:
            conversation.waiting_since = now
    conversation.status = status
    session.flush()
    return conversation


def messages_page(session: Session, *, conversation: Conversation, cursor: str | None = None,
                  limit: int = 50) -> tuple[list[Message], str | None]:
    """Newest first, keyset-paginated on the arrival `sequence`.

    Not created_at: the messages of one webhook batch are stored in one transaction and share it;
    the sequence is their order of arrival (and of queueing, for ours).
    """
    query = select(Message).where(Message.conversation_id == conversation.id)
    if cursor:
        query = query.where(Message.sequence < _decode_sequence_cursor(cursor))
    rows = list(session.execute(query.order_by(Message.sequence.desc()).limit(limit + 1)).scalars())
    items = rows[:limit]
    next_cursor = _encode_sequence_cursor(items[-1].sequence) if len(rows) > limit and items else None
    return items, next_cursor


def _encode_sequence_cursor(sequence: int) -> str:
    return base64.urlsafe_b64encode(json.dumps(["seq", sequence]).encode()).decode()


def _decode_sequence_cursor(cursor: str) -> int:
    try:
        tag, sequence = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if tag != "seq" or not isinstance(sequence, int) or isinstance(sequence, bool):
            raise ValueError(cursor)
        return sequence
    except (ValueError, TypeError) as exc:
        raise InvalidCursorError("cursor is not one this API gave out") from exc


def last_inbound(session: Session, *, conversation: Conversation) -> Message | None:
    return session.execute(
        select(Message)
        .where(Message.conversation_id == conversation.id, Message.direction == Direction.inbound,
               Message.wamid.is_not(None))
        .order_by(Message.sequence.desc())
        .limit(1)
    ).scalar_one_or_none()


def mark_read(session: Session, *, conversation: Conversation) -> Message | None:
    """Unread back to zero; the last inbound message is the one whose read receipt goes to Meta."""
    conversation.unread_count = 0
    conversation.last_read_at = utcnow()
    session.flush()
    return last_inbound(session, conversation=conversation)


def number_and_contact(session: Session, conversation: Conversation) -> tuple[WhatsAppNumber, Contact]:
    """Both in one round trip (each is one row by its primary key)."""
    row = session.execute(
        select(WhatsAppNumber, Contact)
        .join(Contact, Contact.organization_id == WhatsAppNumber.organization_id)
        .where(WhatsAppNumber.id == conversation.number_id, Contact.id == conversation.contact_id)
    ).one()
    return row[0], row[1]


def get_or_open_many(session: Session, *, org_id: uuid.UUID,
                     pairs: set[tuple[uuid.UUID, uuid.UUID]]) -> dict[tuple[uuid.UUID, uuid.UUID], Conversation]:
    """`get_or_open` for a webhook batch: {(number_id, contact_id): conversation}, one insert, one locking read.

    Rows are locked in id order, so two batches that share conversations never deadlock.
    """
    if not pairs:
        return {}
    ordered = sorted(pairs)
    session.execute(
        insert(Conversation)
        .values([{"organization_id": org_id, "number_id": number_id, "contact_id": contact_id}
                 for number_id, contact_id in ordered])
        .on_conflict_do_nothing(index_elements=[Conversation.number_id, Conversation.contact_id])
    )
    found = session.execute(
        select(Conversation)
        .where(tuple_(Conversation.number_id, Conversation.contact_id).in_(ordered))
        .order_by(Conversation.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalars()
    return {(conversation.number_id, conversation.contact_id): conversation for conversation in found}


def open_many(session: Session, *, org_id: uuid.UUID, number_id: uuid.UUID,
              contact_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """{contact_id: conversation_id} of these contacts' threads on this number, opened where new (a campaign's
    batch). Unlocked: queueing into a thread needs no lock of it, and the drain locks threads of its own."""
    session.execute(text("""
        INSERT INTO conversations (organization_id, number_id, contact_id)
        SELECT :org_id, :number_id, contact_id FROM unnest(CAST(:contacts AS uuid[])) AS c(contact_id)
        ORDER BY contact_id
        ON CONFLICT (number_id, contact_id) DO NOTHING"""),
        {"org_id": org_id, "number_id": number_id, "contacts": [str(c) for c in contact_ids]})
    rows = session.execute(text(
        "SELECT contact_id, id FROM conversations WHERE number_id = :number_id AND contact_id = ANY(CAST(:contacts AS uuid[]))"),
        {"number_id": number_id, "contacts": [str(c) for c in contact_ids]})
    return {contact_id: conversation_id for contact_id, conversation_id in rows}

