"""Rows for tests, built directly (no plan checks, no audit): what a test needs to exist."""

from __future__ import annotations

import itertools

from shared.models import Department, Organization, User
from shared.models.base import utcnow
from shared.permissions import Role
from shared.security import hash_password

PASSWORD = "Password123!"
_sequence = itertools.count(1)


def make_org(session, *, name: str | None = None, plan_code: str = "enterprise", **fields) -> Organization:
    org = Organization(name=name or f"Org {next(_sequence)}", plan_code=plan_code, **fields)
    session.add(org)
    session.flush()
    session.refresh(org)
    return org


def make_user(session, org: Organization | None, *, role: str | Role = "agent", email: str | None = None, **fields) -> User:
    role = Role(role)
    user = User(
        organization_id=None if role == Role.super_admin else org.id,
        email=email or f"user{next(_sequence)}@example.com",
        password_hash=hash_password(fields.pop("password", PASSWORD)),
        full_name=fields.pop("full_name", f"{role.value.replace('_', ' ').title()} User"),
        role=role,
        tokens_valid_after=utcnow(),
        **fields,
    )
    session.add(user)
    session.flush()
    session.refresh(user)
    return user


def make_department(session, org: Organization, *, name: str | None = None) -> Department:
    department = Department(organization_id=org.id, name=name or f"Dept {next(_sequence)}")
    session.add(department)
    session.flush()
    session.refresh(department)
    return department
