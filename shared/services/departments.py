"""Departments: teams of users that conversations are assigned to."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db import ensure_name_free, get_owned
from shared.errors import DepartmentNameTakenError, DepartmentNotFoundError
from shared.models import Department, User


def create_department(session: Session, *, org_id: uuid.UUID, name: str, description: str | None = None) -> Department:
    name = name.strip()
    ensure_name_free(session, Department, org_id=org_id, name=name,
                     taken=DepartmentNameTakenError, what="department")
    department = Department(organization_id=org_id, name=name, description=description)
    session.add(department)
    session.flush()
    session.refresh(department)
    return department


def get_department(session: Session, *, org_id: uuid.UUID, department_id: uuid.UUID | str) -> Department:
    return get_owned(session, Department, department_id, org_id=org_id, not_found=DepartmentNotFoundError)


def list_departments(session: Session, *, org_id: uuid.UUID) -> list[Department]:
    return list(
        session.execute(
            select(Department).where(Department.organization_id == org_id).order_by(Department.name)
        ).scalars()
    )


def update_department(session: Session, *, department: Department, changes: dict[str, Any]) -> Department:
    if "name" in changes:
        changes["name"] = changes["name"].strip()
        ensure_name_free(session, Department, org_id=department.organization_id, name=changes["name"],
                         taken=DepartmentNameTakenError, what="department", except_id=department.id)
    for field, value in changes.items():
        setattr(department, field, value)
    session.flush()
    return department


def delete_department(session: Session, *, department: Department) -> None:
    department.members.clear()
    department.soft_delete()
    session.flush()


def add_member(session: Session, *, department: Department, user: User) -> Department:
    if user not in department.members:  # adding twice is a no-op, not an error
        department.members.append(user)
    session.flush()
    return department


def remove_member(session: Session, *, department: Department, user: User) -> Department:
    if user in department.members:
        department.members.remove(user)
    session.flush()
    return department
