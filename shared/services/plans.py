"""Plans pipeline: the limits an organization's plan sets, and the one check every module calls.

Limits live in the `plans` table (seeded by migration, edited by super_admin), never in code.
Each countable resource registers how to count it; modules built later (numbers, contacts,
messages) register their own counters next to their models.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.errors import PlanLimitExceededError, PlanNotFoundError
from shared.models import Organization, Plan, User

UsageCounter = Callable[[Session, uuid.UUID], int]

# resource → (Plan column holding its limit, human name)
RESOURCES: dict[str, tuple[str, str]] = {
    "users": ("max_users", "users"),
    "whatsapp_numbers": ("max_whatsapp_numbers", "WhatsApp numbers"),
    "contacts": ("max_contacts", "contacts"),
    "monthly_messages": ("max_monthly_messages", "messages this month"),
}
_counters: dict[str, UsageCounter] = {}


def register_usage_counter(resource: str, counter: UsageCounter) -> None:
    if resource not in RESOURCES:
        raise ValueError(f"unknown plan resource {resource!r}")
    _counters[resource] = counter


def month_start(now: dt.datetime | None = None) -> dt.datetime:
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _count_users(session: Session, org_id: uuid.UUID) -> int:
    return session.execute(
        select(func.count()).select_from(User).where(User.organization_id == org_id)
    ).scalar_one()


register_usage_counter("users", _count_users)


@dataclass(frozen=True)
class ResourceUsage:
    resource: str
    used: int
    limit: int | None  # None: unlimited
    counted: bool  # False until the module that owns the resource registers its counter

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)


def list_plans(session: Session) -> list[Plan]:
    return list(session.execute(select(Plan).order_by(Plan.max_users.asc().nulls_last())).scalars())


def get_plan(session: Session, *, code: str) -> Plan:
    plan = session.execute(select(Plan).where(Plan.code == code)).scalar_one_or_none()
    if plan is None:
        raise PlanNotFoundError(f"plan {code!r} does not exist")
    return plan


def update_plan(session: Session, *, code: str, changes: dict) -> Plan:
    plan = get_plan(session, code=code)
    for field, value in changes.items():
        setattr(plan, field, value)
    session.flush()
    return plan


def resource_usage(session: Session, *, org: Organization, resource: str) -> ResourceUsage:
    limit_column, _ = RESOURCES[resource]
    counter = _counters.get(resource)
    used = counter(session, org.id) if counter else 0
    return ResourceUsage(resource, used, getattr(org.plan, limit_column), counter is not None)


def usage(session: Session, *, org: Organization) -> dict[str, ResourceUsage]:
    return {resource: resource_usage(session, org=org, resource=resource) for resource in RESOURCES}


def check_limit(session: Session, *, org: Organization, resource: str, adding: int = 1) -> None:
    """Raise PlanLimitExceededError when adding `adding` more would pass the plan's limit."""
    limit_column, _ = RESOURCES[resource]
    if getattr(org.plan, limit_column) is None:
        return  # unlimited: no need to count (the monthly message count is on every send's path)
    current = resource_usage(session, org=org, resource=resource)
    if current.limit is not None and current.used + adding > current.limit:
        _, human = RESOURCES[resource]
        raise PlanLimitExceededError(
            f"The {org.plan.name} plan allows {current.limit} {human}; this would make {current.used + adding}",
            details={
                "resource": resource,
                "limit": current.limit,
                "current_usage": current.used,
                "requested": adding,
                "plan": org.plan_code,
            },
        )
