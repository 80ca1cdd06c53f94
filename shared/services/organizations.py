"""Organizations pipeline: tenants, their plan, their trial, suspension."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.db import get_owned
from shared.audit import audit_on_commit
from shared.errors import OrganizationNotFoundError, OrganizationSuspendedError, TrialExpiredError
from shared.models import Organization, SubscriptionStatus
from shared.models.base import utcnow
from shared.services.plans import get_plan

log = structlog.get_logger(__name__)
TRIAL_DAYS = 14
DEFAULT_PLAN = "free"


def create_organization(
    session: Session, *, name: str, actor_id: uuid.UUID | None, plan_code: str = DEFAULT_PLAN, **fields: Any
) -> Organization:
    """A new organization on a 14-day trial of its plan."""
    get_plan(session, code=plan_code)
    org = Organization(
        name=name,
        plan_code=plan_code,
        subscription_status=SubscriptionStatus.trialing,
        trial_ends_at=utcnow() + dt.timedelta(days=TRIAL_DAYS),
        **fields,
    )
    session.add(org)
    session.flush()
    session.refresh(org)
    audit_on_commit(
        session, org_id=org.id, action="organizations.created", subject_type="organization",
        subject_id=org.id, actor_id=actor_id, data={"name": name, "plan": plan_code},
    )
    return org


def get_organization(session: Session, *, org_id: uuid.UUID | str) -> Organization:
    return get_owned(session, Organization, org_id, org_id=None, not_found=OrganizationNotFoundError)


def list_organizations(session: Session, *, include_deleted: bool = False) -> list[Organization]:
    query = select(Organization).order_by(Organization.created_at.desc())
    if include_deleted:
        query = query.execution_options(include_deleted=True)
    return list(session.execute(query).scalars())


def update_organization(
    session: Session, *, org_id: uuid.UUID, changes: dict[str, Any], actor_id: uuid.UUID | None
) -> Organization:
    org = get_organization(session, org_id=org_id)
    before = {field: _plain(getattr(org, field)) for field in changes}
    if "plan_code" in changes and changes["plan_code"] != org.plan_code:
        get_plan(session, code=changes["plan_code"])
        # A plan chosen (paid for) ends the trial, expired or not.
        org.subscription_status = SubscriptionStatus.active
        audit_on_commit(
            session, org_id=org.id, action="organizations.plan_changed", subject_type="organization",
            subject_id=org.id, actor_id=actor_id, data={"from": org.plan_code, "to": changes["plan_code"]},
        )
    for field, value in changes.items():
        setattr(org, field, value)
    session.flush()
    session.refresh(org)
    audit_on_commit(
        session, org_id=org.id, action="organizations.updated", subject_type="organization",
        subject_id=org.id, actor_id=actor_id,
        data={"changes": {field: {"from": before[field], "to": _plain(value)} for field, value in changes.items()}},
    )
    return org


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.datetime, uuid.UUID)):
        return str(value)
    return getattr(value, "value", value)


def suspend_organization(
    session: Session, *, org_id: uuid.UUID, reason: str | None, actor_id: uuid.UUID | None
) -> Organization:
    org = get_organization(session, org_id=org_id)
    if org.suspended_at is None:
        org.suspended_at = utcnow()
        org.suspension_reason = reason
        audit_on_commit(
            session, org_id=org.id, action="organizations.suspended", subject_type="organization",
            subject_id=org.id, actor_id=actor_id, data={"reason": reason},
        )
    session.flush()
    return org


def reactivate_organization(session: Session, *, org_id: uuid.UUID, actor_id: uuid.UUID | None) -> Organization:
    org = get_organization(session, org_id=org_id)
    if org.suspended_at is not None:
        org.suspended_at = None
        org.suspension_reason = None
        audit_on_commit(
            session, org_id=org.id, action="organizations.reactivated", subject_type="organization",
            subject_id=org.id, actor_id=actor_id,
        )
    session.flush()
    return org


def delete_organization(session: Session, *, org_id: uuid.UUID, actor_id: uuid.UUID | None) -> None:
    org = get_organization(session, org_id=org_id)
    org.soft_delete()
    session.flush()
    audit_on_commit(
        session, org_id=org.id, action="organizations.deleted", subject_type="organization",
        subject_id=org.id, actor_id=actor_id,
    )


def expire_trials(session: Session, *, now: dt.datetime | None = None) -> list[uuid.UUID]:
    """Move trials past their end to `expired`. A conditional UPDATE: running it twice expires nothing more."""
    now = now or utcnow()
    expired = session.execute(
        update(Organization)
        .where(
            Organization.subscription_status == SubscriptionStatus.trialing,
            Organization.trial_ends_at <= now,
            Organization.deleted_at.is_(None),
        )
        .values(subscription_status=SubscriptionStatus.expired, updated_at=now)
        .returning(Organization.id)
        .execution_options(synchronize_session=False, all_tenants=True)
    ).scalars().all()
    for org_id in expired:
        audit_on_commit(
            session, org_id=org_id, action="organizations.trial_expired", subject_type="organization",
            subject_id=org_id, actor_id=None,
        )
        log.info("organizations.trial_expired", org_id=org_id)
    return list(expired)


def ensure_can_send(session: Session, *, org_id: uuid.UUID) -> None:
    """Every send (messages, campaigns) calls this first (or `check_can_send` with the organization at hand)."""
    check_can_send(get_organization(session, org_id=org_id))


def check_can_send(org: Organization) -> None:
    if org.is_suspended:
        raise OrganizationSuspendedError("This organization is suspended; contact support")
    if org.subscription_status == SubscriptionStatus.expired:
        raise TrialExpiredError(
            "The free trial has ended; choose a plan to send messages again",
            details={"trial_ended_at": org.trial_ends_at.isoformat() if org.trial_ends_at else None},
        )
