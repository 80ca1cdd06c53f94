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
    """Tag ids by name, creating the missing ones (race-safe: ON CONFLICT).

    Read first: the tags almost always exist (a bot tagging each customer it answers), and then one
    query is enough; only missing ones cost the insert and a second read.
    """
    names = sorted({name.strip() for name in names if name and name.strip()})
    if not names:
        return {}
    found = _tag_ids(session, org_id, names)
    missing = [name for name in names if name not in found]
    if not missing:
        return found
    session.execute(
        insert(Tag)
        .values([{"organization_id": org_id, "name": name} for name in missing])
        .on_conflict_do_nothing(index_elements=[Tag.organization_id, Tag.name])
    )
    return {**found, **_tag_ids(session, org_id, missing)}


def _tag_ids(session: Session, org_id: uuid.UUID, names: list[str]) -> dict[str, uuid.UUID]:
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
    _expire_tags(session, contact_ids)
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
    _expire_tags(session, contact_ids)
    return result.rowcount


def _expire_tags(session: Session, contact_ids: list[uuid.UUID]) -> None:
    """The changed contacts' `tags`, as loaded in this session, read again on next access: the one thing
    the plain INSERT/DELETE on contact_tags left stale. Expiring the whole session instead made a bot
    step that tags read its conversation, contact, organization and session again (and dropped any
    change not flushed yet)."""
    changed = set(contact_ids)
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Contact) and obj.id in changed:
            session.expire(obj, ["tags"])
