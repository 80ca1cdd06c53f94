"""Tags on contacts."""

from __future__ import annotations

import uuid
from typing import Iterable

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db import get_owned
from shared.errors import ConflictError, NotFoundError
from shared.models import Contact, Tag, contact_tags


class TagNotFoundError(NotFoundError):
    code = "tag_not_found"


def ensure_tags(session: Session, *, org_id: uuid.UUID, names: Iterable[str]) -> dict[str, uuid.UUID]:
    """Tag ids by name, creating the missing ones (race-safe: ON CONFLICT)."""
    names = sorted({name.strip() for name in names if name and name.strip()})
    if not names:
        return {}
    session.execute(
        insert(Tag)
        .values([{"organization_id": org_id, "name": name} for name in names])
        .on_conflict_do_nothing(index_elements=[Tag.organization_id, Tag.name])
    )
    rows = session.execute(select(Tag.name, Tag.id).where(Tag.organization_id == org_id, Tag.name.in_(names)))
    return {name: tag_id for name, tag_id in rows}


def list_tags_with_counts(session: Session, *, org_id: uuid.UUID) -> list[tuple[Tag, int]]:
    live_members = (
        select(contact_tags.c.tag_id, func.count().label("n"))
        .join(Contact, Contact.id == contact_tags.c.contact_id)
        .where(Contact.deleted_at.is_(None), Contact.organization_id == org_id)
        .group_by(contact_tags.c.tag_id)
        .subquery()
    )
    rows = session.execute(
        select(Tag, func.coalesce(live_members.c.n, 0))
        .outerjoin(live_members, live_members.c.tag_id == Tag.id)
        .where(Tag.organization_id == org_id)
        .order_by(Tag.name)
    ).all()
    return [(tag, count) for tag, count in rows]


def get_tag(session: Session, *, org_id: uuid.UUID, tag_id: uuid.UUID | str) -> Tag:
    return get_owned(session, Tag, tag_id, org_id=org_id, not_found=TagNotFoundError)


def create_tag(session: Session, *, org_id: uuid.UUID, name: str, color: str | None = None) -> Tag:
    name = name.strip()
    if session.execute(select(Tag.id).where(Tag.organization_id == org_id, Tag.name == name)).first():
        raise ConflictError(f"A tag named {name!r} already exists", details={"field": "name"})
    tag = Tag(organization_id=org_id, name=name, color=color)
    session.add(tag)
    session.flush()
    return tag


def update_tag(session: Session, *, tag: Tag, changes: dict) -> Tag:
    if "name" in changes and changes["name"].strip() != tag.name:
        name = changes["name"].strip()
        if session.execute(select(Tag.id).where(Tag.organization_id == tag.organization_id, Tag.name == name)).first():
            raise ConflictError(f"A tag named {name!r} already exists", details={"field": "name"})
        changes["name"] = name
    for field, value in changes.items():
        setattr(tag, field, value)
    session.flush()
    return tag


def delete_tag(session: Session, *, tag: Tag) -> None:
    session.delete(tag)
    session.flush()


def tag_contacts(session: Session, *, org_id: uuid.UUID, contact_ids: list[uuid.UUID], names: list[str]) -> int:
    tag_ids = ensure_tags(session, org_id=org_id, names=names)
    if not contact_ids or not tag_ids:
        return 0
    pairs = [{"contact_id": c, "tag_id": t} for c in contact_ids for t in tag_ids.values()]
    result = session.execute(insert(contact_tags).values(pairs).on_conflict_do_nothing())
    session.expire_all()
    return result.rowcount


def untag_contacts(session: Session, *, org_id: uuid.UUID, contact_ids: list[uuid.UUID], names: list[str]) -> int:
    tag_ids = list(
        session.execute(select(Tag.id).where(Tag.organization_id == org_id, Tag.name.in_(names))).scalars()
    )
    if not contact_ids or not tag_ids:
        return 0
    result = session.execute(
        delete(contact_tags).where(contact_tags.c.contact_id.in_(contact_ids), contact_tags.c.tag_id.in_(tag_ids))
    )
    session.expire_all()
    return result.rowcount
