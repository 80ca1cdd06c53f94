"""Consent pipeline: the opt-in / opt-out ledger, and who may be messaged now.

Every change of consent is an event (scope, source, when, who, evidence); the contact's
`marketing_consent` / `utility_consent` columns are derived from the latest events, in the
same transaction, so filters stay fast and the ledger stays the proof.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.models import ConsentAction, ConsentEvent, ConsentScope, ConsentSource, ConsentState, Contact
from shared.models.base import utcnow


class MessageCategory(str, enum.Enum):
    marketing = "marketing"
    utility = "utility"
    service = "service"  # an answer inside the customer-service window


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
) -> ConsentEvent:
    event = ConsentEvent(
        organization_id=contact.organization_id,
        contact_id=contact.id,
        action=action,
        scope=scope,
        source=source,
        actor_user_id=actor_user_id,
        actor=actor,
        evidence=evidence,
        occurred_at=utcnow(),
    )
    session.add(event)
    state = ConsentState.opted_in if action == ConsentAction.opt_in else ConsentState.opted_out
    for column in SCOPE_COLUMNS[scope]:
        setattr(contact, column, state)
    session.flush()
    return event


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


def eligibility(contact: Contact, category: MessageCategory) -> Eligibility:
    """May we send this contact a message of this category now, and if not, why."""
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
    if category == MessageCategory.utility and contact.utility_consent == ConsentState.opted_out:
        return Eligibility(False, "opted_out", "The contact opted out of utility messages")
    return Eligibility(True)
