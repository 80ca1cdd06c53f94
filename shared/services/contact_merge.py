"""Merging a duplicate contact into the one it turned out to be: the contact a customer's new number opened
before Meta's notice of the change reached us (shared/services/contacts.change_number).

The duplicate's threads become the kept contact's (on a number both have a thread with, its messages move into
the kept one, whose counts add up and whose preview and times are the later ones), and so do its consent ledger
and tags; then the duplicate is deleted (soft, as contacts are). Whatever else names it (campaign recipients, the
event log) keeps naming the deleted row.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.audit import audit_on_commit
from shared.models import (
    LIVE_BOT_SESSION_STATUSES,
    OPEN_STATUSES,
    BotEndReason,
    BotSession,
    ConsentEvent,
    Contact,
    Conversation,
    ConversationOwner,
    Direction,
    Message,
    contact_tags,
)
from shared.queueing.names import BOT_STEP
from shared.queueing.publish import enqueue_on_commit
from shared.services import bot_sessions, consent

_LATEST_OF_THREADS = ("last_inbound_at", "last_outbound_at", "last_message_at", "last_read_at", "window_expires_at",
                      "free_entry_until", "unreachable_until")


def same_customer(session: Session, *, old: Contact, new: Contact, changed_at: dt.datetime) -> bool:
    """Whether `new` can only be `old` met early on its new number: we met it after the change (Meta's time),
    nothing it sent predates the change, nothing the old number sent follows it, and their business-scoped user
    ids do not differ. Anything else may be two people, and two people's records are never merged by a webhook."""
    if new.created_at < changed_at or (old.user_id and new.user_id and old.user_id != new.user_id):
        return False
    crossing = select(Message.id).where(Message.direction == Direction.inbound, or_(
        and_(Message.contact_id == new.id, Message.occurred_at < changed_at),
        and_(Message.contact_id == old.id, Message.occurred_at > changed_at))).limit(1)
    return session.execute(crossing).first() is None


def merge(session: Session, *, kept: Contact, duplicate: Contact) -> None:
    """The duplicate's threads, messages, consent ledger and tags become `kept`'s; the duplicate is deleted."""
    threads = session.execute(
        select(Conversation).where(Conversation.contact_id.in_((kept.id, duplicate.id)))
        .order_by(Conversation.id).with_for_update().execution_options(populate_existing=True)
    ).scalars().all()
    kept_on = {thread.number_id: thread for thread in threads if thread.contact_id == kept.id}
    for thread in threads:
        if thread.contact_id != duplicate.id:
            continue
        if thread.number_id in kept_on:
            _merge_thread(session, into=kept_on[thread.number_id], duplicate=thread)
        else:
            thread.contact_id = kept.id
    session.flush()
    session.execute(update(Message).where(Message.contact_id == duplicate.id).values(contact_id=kept.id))
    ledger = session.execute(update(ConsentEvent).where(ConsentEvent.contact_id == duplicate.id)
                             .values(contact_id=kept.id)).rowcount
    session.execute(insert(contact_tags).from_select(
        ["contact_id", "tag_id"],
        select(literal(kept.id, type_=contact_tags.c.contact_id.type), contact_tags.c.tag_id)
        .where(contact_tags.c.contact_id == duplicate.id)).on_conflict_do_nothing())
    session.expire(kept, ["tags"])
    if ledger:
        consent.rederive(session, contact=kept)
    _add_up_contacts(kept, duplicate)
    duplicate.soft_delete()
    session.flush()  # the duplicate's identity and user id are free before `kept` takes them
    kept.user_id = kept.user_id or duplicate.user_id
    kept.profile_name = duplicate.profile_name or kept.profile_name  # the newer number's: the latest WhatsApp sent
    kept.blocked_at = kept.blocked_at or duplicate.blocked_at
    audit_on_commit(session, org_id=kept.organization_id, action="contacts.merged", subject_type="contact",
                    subject_id=kept.id, actor_id=None,
                    data={"duplicate_id": str(duplicate.id), "duplicate_wa_id": duplicate.wa_id})


def _earliest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return min(a, b) if a and b else a or b


def _latest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return max(a, b) if a and b else a or b


def _after(a: dt.datetime | None, b: dt.datetime | None) -> bool:
    return a is not None and (b is None or a > b)


def _add_up_contacts(kept: Contact, duplicate: Contact) -> None:
    kept.messages_in_count += duplicate.messages_in_count
    kept.messages_out_count += duplicate.messages_out_count
    kept.first_inbound_at = _earliest(kept.first_inbound_at, duplicate.first_inbound_at)
    kept.first_outbound_at = _earliest(kept.first_outbound_at, duplicate.first_outbound_at)
    kept.last_inbound_at = _latest(kept.last_inbound_at, duplicate.last_inbound_at)
    kept.last_outbound_at = _latest(kept.last_outbound_at, duplicate.last_outbound_at)


def _handled(thread: Conversation) -> bool:
    return thread.assigned_agent_id is not None or thread.owner == ConversationOwner.bot


def _has_live_bot(session: Session, thread: Conversation) -> bool:
    return session.execute(select(BotSession.id).where(
        BotSession.conversation_id == thread.id, BotSession.status.in_(LIVE_BOT_SESSION_STATUSES))).first() is not None


def _merge_thread(session: Session, *, into: Conversation, duplicate: Conversation) -> None:
    """The duplicate thread's messages and bot sessions moved into `into` (on the same number), which keeps who
    handles it unless only the duplicate was handled; the duplicate thread is deleted."""
    takes_routing = _handled(duplicate) and not _handled(into)
    if not takes_routing or _has_live_bot(session, into):  # one live session per conversation
        bot_sessions.end_live(session, conversation_id=duplicate.id, reason=BotEndReason.closed)
    # Bot sessions too, ended ones included: their applied sequences keep the moved messages from being fed again.
    for model in (BotSession, Message):
        session.execute(update(model).where(model.conversation_id == duplicate.id).values(conversation_id=into.id))
    if into.status not in OPEN_STATUSES and duplicate.status in OPEN_STATUSES:  # the newer thread is the live one
        into.status, into.resolved_at = duplicate.status, duplicate.resolved_at
        into.first_response_at = duplicate.first_response_at
    if takes_routing:
        into.assigned_agent_id, into.department_id = duplicate.assigned_agent_id, duplicate.department_id
        into.owner, into.waiting_since = duplicate.owner, duplicate.waiting_since
    elif not _handled(into):
        into.waiting_since = _earliest(into.waiting_since, duplicate.waiting_since)
    _add_up_threads(into, duplicate)
    session.delete(duplicate)
    if into.owner == ConversationOwner.bot:  # a step the duplicate thread was due is the merged thread's now
        enqueue_on_commit(session, BOT_STEP, org_id=str(into.organization_id), conversation_id=str(into.id))


def _add_up_threads(into: Conversation, duplicate: Conversation) -> None:
    # The preview is the customer's latest words by their time (as a late message leaves it), unless ours came after.
    if _after(duplicate.last_outbound_at, into.last_message_at) or (
            _after(duplicate.last_inbound_at, into.last_inbound_at)
            and not _after(into.last_outbound_at, duplicate.last_message_at)):
        into.last_message_preview = duplicate.last_message_preview
    for name in _LATEST_OF_THREADS:
        setattr(into, name, _latest(getattr(into, name), getattr(duplicate, name)))
    into.referral = into.referral or duplicate.referral
    into.unread_count += duplicate.unread_count
    into.messages_in_count += duplicate.messages_in_count
    into.messages_out_count += duplicate.messages_out_count
