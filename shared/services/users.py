"""Users pipeline: accounts, sign-in, profiles, roles, deactivation."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace
from typing import Any

from psycopg.rows import class_row
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db import driver_connection, get_owned
from shared.audit import audit_now, audit_on_commit
from shared.errors import EmailTakenError, InvalidCredentialsError, UserNotFoundError
from shared.models import Availability, Organization, User
from shared.models.base import utcnow
from shared.permissions import Role
from shared.queueing.names import ASSIGN_WAITING
from shared.queueing.publish import enqueue_on_commit
from shared.security import (
    dummy_password_hash,
    check_password_policy,
    hash_password,
    normalize_email,
    verify_password,
)
from shared.services import organizations, plans
from shared.settings import get_settings


def _ensure_email_free(session: Session, email: str, *, except_user: uuid.UUID | None = None) -> None:
    query = select(User.id).where(User.email == email).execution_options(all_tenants=True)
    existing = session.execute(query).scalar_one_or_none()
    if existing is not None and existing != except_user:
        raise EmailTakenError("An account with this email already exists", details={"field": "email"})


def _new_user(
    session: Session, *, org_id: uuid.UUID | None, email: str, password: str, full_name: str, role: Role, **fields: Any
) -> User:
    email = normalize_email(email)
    check_password_policy(password, email=email)
    _ensure_email_free(session, email)
    user = User(
        organization_id=org_id,
        email=email,
        password_hash=hash_password(password),
        full_name=full_name.strip(),
        role=role,
        tokens_valid_after=utcnow(),  # our clock, the one token times are compared with
        **fields,
    )
    session.add(user)
    session.flush()
    session.refresh(user)
    return user


def register(
    session: Session, *, email: str, password: str, full_name: str, organization_name: str | None = None
) -> tuple[User, Organization]:
    """Self-service sign-up: a new organization on trial, and its first user as org_admin."""
    email = normalize_email(email)
    check_password_policy(password, email=email)
    _ensure_email_free(session, email)
    org = organizations.create_organization(
        session, name=(organization_name or f"{full_name.strip()}'s organization")[:200], actor_id=None
    )
    user = _new_user(
        session, org_id=org.id, email=email, password=password, full_name=full_name, role=Role.org_admin
    )
    audit_on_commit(
        session, org_id=org.id, action="users.registered", subject_type="user", subject_id=user.id, actor_id=user.id
    )
    return user, org


def create_superadmin(session: Session, *, email: str, password: str, full_name: str) -> User:
    user = _new_user(
        session, org_id=None, email=email, password=password, full_name=full_name, role=Role.super_admin
    )
    audit_on_commit(
        session, org_id=None, action="users.superadmin_created", subject_type="user", subject_id=user.id,
        actor_id=None,
    )
    return user


def authenticate(session: Session, *, email: str, password: str) -> User:
    """The user behind these credentials, or InvalidCredentialsError (same answer, same time, whatever was wrong)."""
    try:
        email = normalize_email(email)
    except Exception:
        email = email.strip().lower()
    user = session.execute(
        select(User).where(User.email == email).execution_options(all_tenants=True)
    ).scalar_one_or_none()
    valid = verify_password(password, user.password_hash if user else dummy_password_hash(get_settings().password_hash_rounds))
    if user is None or not valid or not user.is_active:
        raise InvalidCredentialsError("Email or password is incorrect, or the account is deactivated")
    user.last_login_at = utcnow()
    session.flush()
    audit_on_commit(
        session, org_id=user.organization_id, action="auth.signed_in", subject_type="user",
        subject_id=user.id, actor_id=user.id,
    )
    return user


def record_failed_sign_in(*, email: str) -> None:
    """A refused sign-in changes no row, so it is audited at once (see shared/audit.py)."""
    audit_now(
        org_id=None, action="auth.sign_in_failed", subject_type="email", subject_id=email, actor_id=None
    )


@dataclass(frozen=True)
class Standing:
    """What authorizing a request reads about its user and the user's organization."""

    role: Role
    deactivated_at: dt.datetime | None
    deleted_at: dt.datetime | None
    tokens_valid_after: dt.datetime
    organization_id: uuid.UUID | None
    org_exists: bool  # there is an organization and it is not deleted
    org_suspended: bool

    @property
    def is_active(self) -> bool:
        return self.deactivated_at is None and self.deleted_at is None


# Plain SQL: every authenticated request runs it (shared.db.driver_connection says why).
_STANDING = """
SELECT u.role, u.deactivated_at, u.deleted_at, u.tokens_valid_after, u.organization_id,
       o.id IS NOT NULL AND o.deleted_at IS NULL AS org_exists, o.suspended_at IS NOT NULL AS org_suspended
FROM users u LEFT JOIN organizations o ON o.id = u.organization_id
WHERE u.id = %(user_id)s
"""


def standing(session: Session, *, user_id: uuid.UUID) -> Standing | None:
    """The user's role and status and their organization's, in one round trip; None: no such user."""
    with driver_connection(session).cursor(row_factory=class_row(Standing)) as cursor:
        found = cursor.execute(_STANDING, {"user_id": user_id}).fetchone()
    return None if found is None else replace(found, role=Role(found.role))


def get_user(session: Session, *, user_id: uuid.UUID | str, org_id: uuid.UUID | None) -> User:
    return get_owned(session, User, user_id, org_id=org_id, not_found=UserNotFoundError)


def list_users(
    session: Session, *, org_id: uuid.UUID, role: Role | None = None, include_deactivated: bool = True
) -> list[User]:
    query = select(User).where(User.organization_id == org_id).order_by(User.created_at)
    if role is not None:
        query = query.where(User.role == role)
    if not include_deactivated:
        query = query.where(User.deactivated_at.is_(None))
    return list(session.execute(query).scalars())


def create_user(
    session: Session,
    *,
    org: Organization,
    email: str,
    password: str,
    full_name: str,
    role: Role,
    actor_id: uuid.UUID,
    **fields: Any,
) -> User:
    plans.check_limit(session, org=org, resource="users")
    user = _new_user(
        session, org_id=org.id, email=email, password=password, full_name=full_name, role=role, **fields
    )
    audit_on_commit(
        session, org_id=org.id, action="users.created", subject_type="user", subject_id=user.id,
        actor_id=actor_id, data={"role": role.value},
    )
    return user


def update_user(session: Session, *, user: User, changes: dict[str, Any], actor_id: uuid.UUID) -> User:
    if "email" in changes:
        changes["email"] = normalize_email(changes["email"])
        _ensure_email_free(session, changes["email"], except_user=user.id)
    if "role" in changes and changes["role"] != user.role:
        audit_on_commit(
            session, org_id=user.organization_id, action="users.role_changed", subject_type="user",
            subject_id=user.id, actor_id=actor_id, data={"from": user.role.value, "to": Role(changes["role"]).value},
        )
        user.tokens_valid_after = utcnow()  # tokens carry the role: make the holder sign in again
    if "availability" in changes:
        user.last_seen_at = utcnow()
        if changes["availability"] == Availability.online and user.organization_id is not None:
            # An agent coming online may take conversations waiting in the assignment queue.
            enqueue_on_commit(session, ASSIGN_WAITING, org_id=str(user.organization_id))
    for field, value in changes.items():
        setattr(user, field, value)
    session.flush()
    return user


def change_password(session: Session, *, user: User, current_password: str, new_password: str) -> User:
    if not verify_password(current_password, user.password_hash):
        raise InvalidCredentialsError("The current password is incorrect")
    check_password_policy(new_password, email=user.email)
    user.password_hash = hash_password(new_password)
    user.tokens_valid_after = utcnow()
    session.flush()
    audit_on_commit(
        session, org_id=user.organization_id, action="users.password_changed", subject_type="user",
        subject_id=user.id, actor_id=user.id,
    )
    return user


def deactivate_user(session: Session, *, user: User, actor_id: uuid.UUID) -> User:
    if user.deactivated_at is None:
        user.deactivated_at = utcnow()
        user.tokens_valid_after = user.deactivated_at
        audit_on_commit(
            session, org_id=user.organization_id, action="users.deactivated", subject_type="user",
            subject_id=user.id, actor_id=actor_id,
        )
    session.flush()
    return user


def activate_user(session: Session, *, user: User, actor_id: uuid.UUID) -> User:
    if user.deactivated_at is not None:
        user.deactivated_at = None
        audit_on_commit(
            session, org_id=user.organization_id, action="users.reactivated", subject_type="user",
            subject_id=user.id, actor_id=actor_id,
        )
    session.flush()
    return user


def delete_user(session: Session, *, user: User, actor_id: uuid.UUID) -> None:
    user.soft_delete()
    user.tokens_valid_after = utcnow()
    session.flush()
    audit_on_commit(
        session, org_id=user.organization_id, action="users.deleted", subject_type="user",
        subject_id=user.id, actor_id=actor_id,
    )


def touch_last_seen(session: Session, *, user: User) -> None:
    user.last_seen_at = utcnow()
    session.flush()
