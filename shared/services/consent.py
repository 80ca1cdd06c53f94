"""Consent pipeline: the opt-in / opt-out ledger, and who may be messaged now.

Every change of consent is an event (scope, source, when, who, evidence); the contact's
`marketing_consent` / `utility_consent` columns are derived from the latest events, in the
same transaction, so filters stay fast and the ledger stays the proof.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.models import (
    ConsentAction,
    ConsentEvent,
    ConsentScope,
    ConsentSource,
    ConsentState,
    Contact,
    Conversation,
)
from shared.models.base import utcnow
from shared.settings import get_settings


class MessageCategory(str, enum.Enum):
    marketing = "marketing"
    utility = "utility"
    service = "service"  # an answer inside the customer-service window


def category_of(template_category: str | None) -> MessageCategory:
    """The consent a message needs: a free-form reply none beyond the window (service); a template its Meta
    category's, marketing or utility (authentication templates are held to the utility opt-out)."""
    if template_category is None:
        return MessageCategory.service
    name = template_category.lower()
    return MessageCategory(name) if name in ("marketing", "utility") else MessageCategory.utility


SCOPE_COLUMNS = {
    ConsentScope.marketing: ("marketing_consent",),
    ConsentScope.utility: ("utility_consent",),
    ConsentScope.all: ("marketing_consent", "utility_consent"),
}


def record_consent(
    session: Session,
    *,
    contact: Contact,
    action: ConsentAction,
    scope: ConsentScope,
    source: ConsentSource,
    actor_user_id: uuid.UUID | None = None,
    actor: str | None = None,
    evidence: str | None = None,
    occurred_at: dt.datetime | None = None,
) -> ConsentEvent:
    """One event in the ledger (at `occurred_at`, now by default), and the contact's columns its scope covers,
    except those an event later than it decided: a keyword Meta delivers late is on record, and changes nothing."""
    occurred_at = occurred_at or utcnow()
    decided_later = columns_decided_after(session, contact=contact, at=occurred_at)
    event = ConsentEvent(
        organization_id=contact.organization_id,
        contact_id=contact.id,
        action=action,
        scope=scope,
        source=source,
        actor_user_id=actor_user_id,
        actor=actor,
        evidence=evidence,
        occurred_at=occurred_at,
    )
    session.add(event)
    state = ConsentState.opted_in if action == ConsentAction.opt_in else ConsentState.opted_out
    for column in SCOPE_COLUMNS[scope]:
        if column not in decided_later:
            setattr(contact, column, state)
    session.flush()
    return event


def columns_decided_after(session: Session, *, contact: Contact, at: dt.datetime) -> set[str]:
    """The contact's consent columns that a ledger event later than `at` set."""
    scopes = session.execute(select(ConsentEvent.scope).distinct().where(
        ConsentEvent.contact_id == contact.id, ConsentEvent.occurred_at > at)).scalars()
    return {column for scope in scopes for column in SCOPE_COLUMNS[scope]}


def superseded(session: Session, *, contact: Contact, scope: ConsentScope, at: dt.datetime) -> bool:
    """Whether a change of this scope at `at` would come too late to change anything: later events decided it."""
    return set(SCOPE_COLUMNS[scope]) <= columns_decided_after(session, contact=contact, at=at)


def rederive(session: Session, *, contact: Contact) -> None:
    """The contact's consent columns set again from its ledger (events moved to it from a merged duplicate): each
    column as the latest event covering it left it; a column no event covers keeps its value."""
    events = session.execute(select(ConsentEvent.scope, ConsentEvent.action).where(
        ConsentEvent.contact_id == contact.id).order_by(ConsentEvent.occurred_at, ConsentEvent.created_at)).all()
    for scope, action in events:
        state = ConsentState.opted_in if action == ConsentAction.opt_in else ConsentState.opted_out
        for column in SCOPE_COLUMNS[scope]:
            setattr(contact, column, state)


def consent_history(session: Session, *, contact: Contact) -> list[ConsentEvent]:
    return list(
        session.execute(
            select(ConsentEvent)
            .where(ConsentEvent.contact_id == contact.id)
            .order_by(ConsentEvent.occurred_at.desc(), ConsentEvent.id.desc())
        ).scalars()
    )


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    reason: str | None = None
    message: str | None = None


UNDELIVERABLE = "131026"


def eligibility(contact: Contact, category: MessageCategory, *, unreachable_until: dt.datetime | None = None,
                now: dt.datetime | None = None) -> Eligibility:
    """May we send this contact a message of this category now, and if not, why.

    `unreachable_until`: the conversation's (this contact on this number) hold after Meta's 131026."""
    if contact.deleted_at is not None:
        return Eligibility(False, "deleted", "The contact was deleted")
    if contact.blocked_at is not None:
        return Eligibility(False, "blocked", "The contact is blocked")
    if not contact.phone_e164 or not contact.wa_id:
        return Eligibility(False, "invalid_number", "The contact has no valid WhatsApp number")
    if category == MessageCategory.marketing:
        if contact.marketing_consent == ConsentState.opted_out:
            return Eligibility(False, "opted_out", "The contact opted out of marketing messages")
        if contact.marketing_consent != ConsentState.opted_in:
            return Eligibility(False, "no_opt_in", "The contact never opted in to marketing messages")
        if unreachable_until is not None and unreachable_until > (now or utcnow()):
            return Eligibility(False, "unreachable", "Meta reported this contact undeliverable on this number (131026); "
                                                     f"marketing waits until {unreachable_until.isoformat()}")
    if category == MessageCategory.utility and contact.utility_consent == ConsentState.opted_out:
        return Eligibility(False, "opted_out", "The contact opted out of utility messages")
    return Eligibility(True)


def note_undeliverable(session: Session, *, conversation_id: uuid.UUID, code: str | None, at: dt.datetime) -> None:
    """Meta's 131026 for a message of this conversation holds marketing to its contact on its number for
    UNREACHABLE_HOURS (a later 131026 extends the hold; any other code changes nothing)."""
    if code != UNDELIVERABLE:
        return
    until = at + dt.timedelta(hours=get_settings().unreachable_hours)
    session.execute(
        update(Conversation).where(Conversation.id == conversation_id)
        .values(unreachable_until=func.greatest(func.coalesce(Conversation.unreachable_until, until), until))
        .execution_options(synchronize_session=False, all_tenants=True))
