"""Messages pipeline, the send request's two statements: what queueing a message reads, and its write.

Every agent reply takes this path, so both are plain SQL on the session's own connection
(shared.db.driver_connection): `read_for_send` reads everything the send rules need (the conversation,
its number, its contact, its organization and plan, the viewer's departments, the message an
Idempotency-Key already names) in one round trip;
`insert_queued` locks the conversation, inserts the message and moves the conversation's preview in
one statement, so the send request needs no transaction around them (web.db.writes_once: no BEGIN,
no COMMIT round trip). Between the two a rule may change (the window closes, the contact is blocked):
the sends pool checks the same rules again before anything leaves. Both name the organization
explicitly (the tenancy hook does not see them). The rules themselves live in shared/services/messages.py.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from sqlalchemy.orm import Session, make_transient_to_detached

from shared.db import driver_connection
from shared.models import Message
from shared.permissions import Role
from shared.services import conversations, numbers

_CONTEXT = """
SELECT c.id AS conversation_id, c.organization_id, c.window_expires_at, c.unreachable_until, c.assigned_agent_id,
       c.department_id,
       EXISTS (SELECT 1 FROM department_members dm
               WHERE dm.user_id = %(viewer_id)s AND dm.department_id = c.department_id) AS in_viewers_department,
       n.id AS number_id, n.waba_id, n.deleted_at IS NOT NULL AS number_deleted,
       ct.id AS contact_id, ct.deleted_at, ct.blocked_at, ct.phone_e164, ct.wa_id, ct.marketing_consent,
       ct.utility_consent,
       o.suspended_at, o.subscription_status, o.trial_ends_at, p.max_monthly_messages,
       (SELECT m.id FROM messages m WHERE m.organization_id = c.organization_id
                                      AND m.idempotency_key = %(idempotency_key)s) AS idempotency_key_used_by
FROM conversations c
JOIN whatsapp_numbers n ON n.id = c.number_id
JOIN contacts ct ON ct.id = c.contact_id
JOIN organizations o ON o.id = c.organization_id
JOIN plans p ON p.code = o.plan_code
WHERE c.id = %(conversation_id)s AND c.organization_id = %(org_id)s
"""

# The conversation's lock is taken before the row draws its `sequence` (the INSERT reads its one row from
# `locked`), so a conversation's messages take their sequence in commit order; in autocommit it is held
# until this statement commits. ON CONFLICT: a concurrent request with the same Idempotency-Key inserted
# first. The preview moves only when this message was stored.
_QUEUE = """
WITH locked AS (
  SELECT id FROM conversations WHERE id = %(conversation_id)s AND organization_id = %(organization_id)s FOR UPDATE
), queued AS (
  INSERT INTO messages (id, organization_id, conversation_id, contact_id, number_id, direction, type, content,
                        status, queued_at, next_attempt_at, sender_type, sender_user_id, campaign_id, template_id,
                        idempotency_key, context_wamid, origin)
  SELECT %(id)s, %(organization_id)s, locked.id, %(contact_id)s, %(number_id)s, 'outbound', %(type)s,
         %(content)s, 'queued', %(now)s, %(now)s, %(sender_type)s, %(sender_user_id)s, %(campaign_id)s,
         %(template_id)s, %(idempotency_key)s, %(context_wamid)s, %(origin)s
  FROM locked
  ON CONFLICT (organization_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING sequence, created_at, updated_at
), previewed AS (
  UPDATE conversations SET last_message_at = %(now)s, last_message_preview = %(preview)s, updated_at = now()
  WHERE id = %(conversation_id)s AND EXISTS (SELECT FROM queued)
)
SELECT EXISTS (SELECT FROM locked), queued.* FROM (SELECT) AS one LEFT JOIN queued ON true
"""

_INSERTED = {"id", "organization_id", "conversation_id", "contact_id", "number_id", "direction", "type", "content",
             "status", "queued_at", "next_attempt_at", "sender_type", "sender_user_id", "campaign_id", "template_id",
             "idempotency_key", "context_wamid", "origin", "sequence", "created_at", "updated_at"}


def _unset_columns() -> dict[str, object]:
    """The columns `_QUEUE` leaves to their defaults, as a new Message object must hold them, so that
    reading one (the response's dump) never goes back to the database. Read off the table, so a column
    added later is covered without anyone remembering this list."""
    unset = {}
    for column in Message.__table__.columns:
        if column.key in _INSERTED:
            continue
        default = column.default
        unset[column.key] = default.arg if default is not None and default.is_scalar else None
    return unset


UNSET_COLUMNS = _unset_columns()


@dataclass(frozen=True)
class SendContext:
    """What queueing reads about a conversation in one locking round trip: the conversation, its number,
    its contact (the fields consent.eligibility reads) and its organization (the fields
    organizations.check_can_send reads), plus the viewer's department membership."""

    conversation_id: uuid.UUID
    organization_id: uuid.UUID
    window_expires_at: dt.datetime | None
    unreachable_until: dt.datetime | None
    assigned_agent_id: uuid.UUID | None
    department_id: uuid.UUID | None
    in_viewers_department: bool
    number_id: uuid.UUID
    waba_id: str
    number_deleted: bool
    contact_id: uuid.UUID
    deleted_at: dt.datetime | None
    blocked_at: dt.datetime | None
    phone_e164: str | None
    wa_id: str | None
    marketing_consent: str
    utility_consent: str
    suspended_at: dt.datetime | None
    subscription_status: str
    trial_ends_at: dt.datetime | None
    max_monthly_messages: int | None
    idempotency_key_used_by: uuid.UUID | None  # the message an earlier request with the same key made

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None

    def window_open(self, now: dt.datetime) -> bool:
        return self.window_expires_at is not None and self.window_expires_at > now


def read_for_send(session: Session, *, org_id: uuid.UUID, conversation_id: uuid.UUID | str,
                  viewer_id: uuid.UUID | None = None, viewer_role: Role | None = None,
                  idempotency_key: str | None = None) -> SendContext:
    """The conversation with what the send rules read, and which message already holds `idempotency_key`
    (in the same round trip: a bot step's replies each looked it up on their own). An agent viewer gets the
    same 404 for a conversation they may not see as for a missing one."""
    not_found = conversations.ConversationNotFoundError(f"conversation {conversation_id} not found")
    try:
        conversation_uuid = uuid.UUID(str(conversation_id))
    except ValueError as exc:
        raise not_found from exc
    with driver_connection(session).cursor(row_factory=class_row(SendContext)) as cursor:
        context = cursor.execute(_CONTEXT, {"conversation_id": conversation_uuid, "org_id": org_id,
                                            "viewer_id": viewer_id, "idempotency_key": idempotency_key}).fetchone()
    if context is None:
        raise not_found
    if viewer_role == Role.agent and not conversations.agent_sees(
            agent_id=viewer_id, assigned_agent_id=context.assigned_agent_id, department_id=context.department_id,
            in_agents_department=context.in_viewers_department):
        raise not_found
    if context.number_deleted:
        raise numbers.NumberNotFoundError(f"number {context.number_id} of this conversation was deleted")
    return context


def insert_queued(session: Session, message: Message, *, preview: str) -> bool:
    """Store the message and move its conversation's preview; False: its Idempotency-Key was used first."""
    row = driver_connection(session).execute(_QUEUE, {
        "id": message.id, "organization_id": message.organization_id, "conversation_id": message.conversation_id,
        "contact_id": message.contact_id, "number_id": message.number_id, "type": message.type,
        "content": Jsonb(message.content), "now": message.queued_at, "sender_type": message.sender_type.value,
        "sender_user_id": message.sender_user_id, "campaign_id": message.campaign_id,
        "template_id": message.template_id, "idempotency_key": message.idempotency_key,
        "context_wamid": message.context_wamid, "preview": preview,
        "origin": Jsonb(message.origin) if message.origin is not None else None,
    }).fetchone()
    conversation_found, message.sequence, message.created_at, message.updated_at = row
    if not conversation_found:  # gone since read_for_send
        raise conversations.ConversationNotFoundError(f"conversation {message.conversation_id} not found")
    if message.sequence is None:
        return False
    make_transient_to_detached(message)  # the row exists: the session tracks it without reading it back
    session.add(message)
    return True
