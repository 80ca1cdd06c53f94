"""Conversations pipeline: who works a conversation. Manual assignment, and the automatic round-robin.

Automatic assignment picks, among the online agents of the conversation's department (or of the
organization when it has none), the one who has waited longest since their last assignment and is
under their capacity (`max_open_conversations`). Conversations nobody can take wait in a queue
(`waiting_since`) and are handed out when an agent comes online or frees capacity.

Concurrency: every automatic assignment of an organization runs under one transaction-scoped
advisory lock, taken only when an agent with room exists (queueing a conversation takes none),
so two workers never count the same free seat twice; the conversation row itself is
locked by its caller, so it is never given to two agents.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from shared.audit import audit_on_commit
from shared.errors import InvalidInputError
from shared.models import (
    OPEN_STATUSES,
    Availability,
    BotEndReason,
    Conversation,
    ConversationOwner,
    Department,
    User,
    department_members,
)
from shared.models.base import utcnow
from shared.permissions import Role
from shared.services import bot_sessions
from shared.services.conversations import get_conversation

ASSIGNABLE_ROLES = (Role.agent, Role.org_admin)
WAITING_BATCH = 200


class AssigneeInvalidError(InvalidInputError):
    code = "invalid_assignee"


def _lock_assignments(session: Session, org_id: uuid.UUID) -> None:
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"pytake:assign:{org_id}"})


def open_load(session: Session, *, user_id: uuid.UUID) -> int:
    return session.execute(
        select(func.count()).select_from(Conversation)
        .where(Conversation.assigned_agent_id == user_id, Conversation.status.in_(OPEN_STATUSES))
    ).scalar_one()


def _next_agent(session: Session, *, org_id: uuid.UUID, department_id: uuid.UUID | None) -> User | None:
    load = (
        select(func.count()).select_from(Conversation)
        .where(Conversation.assigned_agent_id == User.id, Conversation.status.in_(OPEN_STATUSES))
        .correlate(User).scalar_subquery()
    )
    query = select(User).where(
        User.organization_id == org_id,
        User.role.in_(ASSIGNABLE_ROLES),
        User.availability == Availability.online,
        User.deactivated_at.is_(None),
        load < User.max_open_conversations,
    )
    if department_id is not None:
        query = query.where(User.id.in_(
            select(department_members.c.user_id).where(department_members.c.department_id == department_id)
        ))
    return session.execute(
        query.order_by(User.last_assigned_at.asc().nulls_first(), User.id).limit(1)
    ).scalar_one_or_none()


def _give(session: Session, conversation: Conversation, agent: User, *, actor_id: uuid.UUID | None, how: str) -> None:
    previous = conversation.assigned_agent_id
    conversation.assigned_agent_id = agent.id
    conversation.owner = ConversationOwner.agent
    conversation.waiting_since = None
    agent.last_assigned_at = utcnow()
    audit_on_commit(
        session, org_id=conversation.organization_id, action="conversations.assigned", subject_type="conversation",
        subject_id=conversation.id, actor_id=actor_id,
        data={"agent_id": str(agent.id), "from_agent_id": str(previous) if previous else None, "how": how},
    )


def auto_assign(session: Session, *, conversation: Conversation) -> User | None:
    """Give a locked, unassigned, open conversation to the next online agent with room, or queue it.

    The organization's lock is taken only when someone could take the conversation: with nobody
    online (the common case under load) it is queued without it. An agent who comes online meanwhile
    runs `assign_waiting` under the lock; one that ran just before this commit is caught up by the
    message sweep, which hands waiting conversations out again.
    """
    if conversation.assigned_agent_id is not None or conversation.status not in OPEN_STATUSES:
        return None
    if _next_agent(session, org_id=conversation.organization_id, department_id=conversation.department_id) is None:
        queue_unassigned(session, conversation=conversation)
        return None
    _lock_assignments(session, conversation.organization_id)
    agent = _next_agent(session, org_id=conversation.organization_id, department_id=conversation.department_id)
    if agent is None:  # the seat went to someone else while we waited for the lock
        queue_unassigned(session, conversation=conversation)
        return None
    _give(session, conversation, agent, actor_id=None, how="auto")
    session.flush()
    return agent


def queue_unassigned(session: Session, *, conversation: Conversation) -> None:
    """Put an open, unassigned conversation in the assignment queue (no lock: nothing is given)."""
    if conversation.assigned_agent_id is None and conversation.status in OPEN_STATUSES:
        conversation.waiting_since = conversation.waiting_since or utcnow()


def assign_waiting(session: Session, *, org_id: uuid.UUID) -> int:
    """Hand queued conversations, oldest first, to agents with room; how many were assigned."""
    _lock_assignments(session, org_id)
    waiting = session.execute(
        select(Conversation)
        .where(Conversation.organization_id == org_id, Conversation.assigned_agent_id.is_(None),
               Conversation.waiting_since.is_not(None), Conversation.status.in_(OPEN_STATUSES))
        .order_by(Conversation.waiting_since, Conversation.id)
        .limit(WAITING_BATCH)
        .with_for_update(skip_locked=True)
    ).scalars().all()
    assigned = 0
    for conversation in waiting:
        agent = _next_agent(session, org_id=org_id, department_id=conversation.department_id)
        if agent is None:
            continue  # another department may still have room
        _give(session, conversation, agent, actor_id=None, how="auto")
        session.flush()
        assigned += 1
    return assigned


def _assignee(session: Session, *, org_id: uuid.UUID, agent_id: uuid.UUID) -> User:
    agent = session.execute(
        select(User).where(User.id == agent_id, User.organization_id == org_id, User.deactivated_at.is_(None))
    ).scalar_one_or_none()
    if agent is None or agent.role not in ASSIGNABLE_ROLES:
        raise AssigneeInvalidError("The assignee must be an active agent or admin of this organization",
                                   details={"agent_id": str(agent_id)})
    return agent


def assign(session: Session, *, conversation: Conversation, actor_id: uuid.UUID,
           agent_id: uuid.UUID | None = None, department_id: uuid.UUID | None = None) -> Conversation:
    """Assign (or transfer) to an agent, to a department, or both. A person's choice may exceed a capacity.

    A department alone keeps the conversation's agent only if they belong to it; otherwise the agent is
    released and the department's next agent with room takes it (or it waits in the queue)."""
    if agent_id is None and department_id is None:
        raise AssigneeInvalidError("Name an agent_id, a department_id or both")
    conversation = get_conversation(session, org_id=conversation.organization_id, conversation_id=conversation.id,
                                    for_update=True)
    if department_id is not None:
        department = session.execute(
            select(Department).where(Department.id == department_id,
                                     Department.organization_id == conversation.organization_id)
        ).scalar_one_or_none()
        if department is None:
            raise AssigneeInvalidError("No such department here", details={"department_id": str(department_id)})
        conversation.department_id = department.id
        audit_on_commit(
            session, org_id=conversation.organization_id, action="conversations.department_changed",
            subject_type="conversation", subject_id=conversation.id, actor_id=actor_id,
            data={"department_id": str(department.id)},
        )
        if agent_id is None and conversation.assigned_agent_id is not None and not _is_member(
                session, department_id=department.id, user_id=conversation.assigned_agent_id):
            _release(session, conversation, actor_id=actor_id, reason="not_in_department")
    if agent_id is not None:
        _give(session, conversation, _assignee(session, org_id=conversation.organization_id, agent_id=agent_id),
              actor_id=actor_id, how="manual")
        # A person who takes the conversation stops its bot (a handed-off session already waits for them).
        bot_sessions.end_live(session, conversation_id=conversation.id, reason=BotEndReason.agent,
                              statuses=bot_sessions.STEPPING)
    elif conversation.assigned_agent_id is None:
        auto_assign(session, conversation=conversation)
    session.flush()
    return conversation


def unassign(session: Session, *, conversation: Conversation, actor_id: uuid.UUID) -> Conversation:
    """Back to the queue: the next agent with room takes it."""
    conversation = get_conversation(session, org_id=conversation.organization_id, conversation_id=conversation.id,
                                    for_update=True)
    _release(session, conversation, actor_id=actor_id)
    session.flush()
    return conversation


def _release(session: Session, conversation: Conversation, *, actor_id: uuid.UUID | None,
             reason: str | None = None) -> None:
    previous = conversation.assigned_agent_id
    conversation.assigned_agent_id = None
    conversation.owner = ConversationOwner.none
    if conversation.status in OPEN_STATUSES:
        conversation.waiting_since = utcnow()
    audit_on_commit(
        session, org_id=conversation.organization_id, action="conversations.unassigned", subject_type="conversation",
        subject_id=conversation.id, actor_id=actor_id,
        data={"from_agent_id": str(previous) if previous else None, "reason": reason},
    )


def _is_member(session: Session, *, department_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    return session.execute(
        select(department_members.c.user_id).where(department_members.c.department_id == department_id,
                                                   department_members.c.user_id == user_id)
    ).first() is not None


def organizations_waiting(session: Session) -> list[uuid.UUID]:
    """Organizations with conversations in the assignment queue (for the sweep)."""
    return list(session.execute(
        select(Conversation.organization_id).distinct()
        .where(Conversation.assigned_agent_id.is_(None), Conversation.waiting_since.is_not(None),
               Conversation.status.in_(OPEN_STATUSES))
        .execution_options(all_tenants=True)
    ).scalars())
