"""Contacts pipeline: identity, profile, lifecycle, blocking, and the filtered list.

Identity is exact: a contact is found by its phone's identity key (shared/phones.py), so
every form of one WhatsApp number lands on the same contact.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any, Sequence

import structlog
from sqlalchemy import func, literal, literal_column, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db import get_owned
from shared.errors import ConflictError, InvalidInputError, NotFoundError
from shared.models import DEFAULT_LIFECYCLE_STAGES, Contact, Organization
from shared.models.base import utcnow
from shared.models.contacts import ContactFormerNumber
from shared.phones import identity_key_for_wa_id, normalize_phone
from shared.security import normalize_email
from shared.services import attributes, contact_merge, plans, tags
from shared.services.contact_filters import contact_conditions

log = structlog.get_logger(__name__)
MAX_LEAD_SCORE = 1_000_000_000  # any score and any move fit the column (PostgreSQL integer)


class ContactNotFoundError(NotFoundError):
    code = "contact_not_found"


class ContactExistsError(ConflictError):
    code = "contact_exists"


class LifecycleStageError(InvalidInputError):
    code = "invalid_lifecycle_stage"


def lifecycle_stages(org: Organization) -> list[str]:
    return list(org.settings.get("lifecycle_stages") or DEFAULT_LIFECYCLE_STAGES)


def check_lifecycle_stage(org: Organization, stage: str) -> str:
    allowed = lifecycle_stages(org)
    if stage not in allowed:
        raise LifecycleStageError(f"{stage!r} is not a lifecycle stage here", details={"allowed": allowed})
    return stage


def find_by_phone(session: Session, *, org_id: uuid.UUID, identity_key: str) -> Contact | None:
    return session.execute(
        select(Contact).where(Contact.organization_id == org_id, Contact.identity_key == identity_key)
    ).scalar_one_or_none()


def get_contact(session: Session, *, org_id: uuid.UUID, contact_id: uuid.UUID | str) -> Contact:
    return get_owned(session, Contact, contact_id, org_id=org_id, not_found=ContactNotFoundError)


def _profile_fields(session: Session, org: Organization, fields: dict[str, Any]) -> dict[str, Any]:
    fields = dict(fields)
    if fields.get("email"):
        fields["email"] = normalize_email(fields["email"])
    if fields.get("lifecycle_stage"):
        check_lifecycle_stage(org, fields["lifecycle_stage"])
    if "custom_attributes" in fields:
        fields["custom_attributes"] = attributes.coerce_attributes(
            attributes.attribute_types(session, org_id=org.id), fields["custom_attributes"] or {}
        )
    return fields


def create_contact(
    session: Session, *, org: Organization, phone: str, tag_names: list[str] | None = None, **fields: Any
) -> Contact:
    number = normalize_phone(phone, default_country=org.default_country)
    existing = find_by_phone(session, org_id=org.id, identity_key=number.identity_key)
    if existing is not None:
        raise ContactExistsError(
            f"{number.e164} is already a contact", details={"contact_id": str(existing.id), "phone": existing.phone_e164}
        )
    plans.check_limit(session, org=org, resource="contacts")
    contact = Contact(
        organization_id=org.id,
        phone_e164=number.e164,
        wa_id=number.wa_id,
        identity_key=number.identity_key,
        **_profile_fields(session, org, fields),
    )
    session.add(contact)
    session.flush()
    if tag_names:
        tags.tag_contacts(session, org_id=org.id, contact_ids=[contact.id], names=tag_names)
    session.refresh(contact)
    return contact


def update_contact(session: Session, *, org: Organization, contact: Contact, changes: dict[str, Any]) -> Contact:
    changes = _profile_fields(session, org, changes)
    if "phone" in changes:
        number = normalize_phone(changes.pop("phone"), default_country=org.default_country)
        other = find_by_phone(session, org_id=org.id, identity_key=number.identity_key)
        if other is not None and other.id != contact.id:
            raise ContactExistsError(f"{number.e164} is already another contact", details={"contact_id": str(other.id)})
        contact.phone_e164, contact.wa_id, contact.identity_key = number.e164, number.wa_id, number.identity_key
    if "custom_attributes" in changes:
        # Merge: set keys replace, null values remove.
        merged = {**contact.custom_attributes, **changes.pop("custom_attributes")}
        contact.custom_attributes = {k: v for k, v in merged.items() if v is not None}
    for field, value in changes.items():
        setattr(contact, field, value)
    session.flush()
    session.refresh(contact)
    return contact


def delete_contact(session: Session, *, contact: Contact) -> None:
    contact.soft_delete()
    session.flush()


def set_blocked(session: Session, *, contact: Contact, blocked: bool) -> Contact:
    if blocked and contact.blocked_at is None:
        contact.blocked_at = utcnow()
    elif not blocked:
        contact.blocked_at = None
    session.flush()
    return contact


def adjust_lead_score(session: Session, *, contact: Contact, delta: int | None = None, value: int | None = None) -> Contact:
    """Set or move the score, kept within +-MAX_LEAD_SCORE (a move past the bound stops at it)."""
    score = value if value is not None else contact.lead_score + (delta or 0)
    contact.lead_score = max(-MAX_LEAD_SCORE, min(MAX_LEAD_SCORE, score))
    session.flush()
    return contact


# -- the filtered list --------------------------------------------------------------------

SORTS = {
    "created_at": Contact.created_at,
    "name": func.coalesce(Contact.name, literal_column("''")),
    "lead_score": Contact.lead_score,
    "last_seen_at": func.coalesce(Contact.last_inbound_at, literal_column("'epoch'::timestamptz")),
}


@dataclass(frozen=True)
class ContactPage:
    items: Sequence[Contact]
    next_cursor: str | None


def _cursor_value(sort_field: str, contact: Contact) -> Any:
    if sort_field == "created_at":
        return contact.created_at.isoformat()
    if sort_field == "name":
        return contact.name or ""
    if sort_field == "lead_score":
        return contact.lead_score
    return (contact.last_inbound_at or dt.datetime.fromtimestamp(0, dt.timezone.utc)).isoformat()


def _decode_cursor(sort_field: str, cursor: str) -> tuple[Any, uuid.UUID]:
    try:
        value, contact_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if sort_field in ("created_at", "last_seen_at"):
            value = dt.datetime.fromisoformat(value)
        return value, uuid.UUID(contact_id)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError("cursor is not one this API produced", details={"field": "cursor"}) from exc


def filtered_query(session: Session, *, org_id: uuid.UUID, spec: dict[str, Any]):
    types = attributes.attribute_types(session, org_id=org_id)
    return select(Contact).where(*contact_conditions(spec, org_id=org_id, attribute_types=types))


def list_contacts(
    session: Session,
    *,
    org_id: uuid.UUID,
    spec: dict[str, Any],
    sort: str = "-created_at",
    limit: int = 50,
    cursor: str | None = None,
) -> ContactPage:
    descending = sort.startswith("-")
    sort_field = sort.lstrip("-")
    expression = SORTS[sort_field]
    query = filtered_query(session, org_id=org_id, spec=spec)
    if cursor:
        value, contact_id = _decode_cursor(sort_field, cursor)
        key, bound = tuple_(expression, Contact.id), tuple_(literal(value), literal(contact_id))
        query = query.where(key < bound if descending else key > bound)
    order = (expression.desc(), Contact.id.desc()) if descending else (expression.asc(), Contact.id.asc())
    rows = session.execute(query.order_by(*order).limit(limit + 1)).scalars().all()
    items, more = rows[:limit], len(rows) > limit
    next_cursor = None
    if more:
        raw = json.dumps([_cursor_value(sort_field, items[-1]), str(items[-1].id)])
        next_cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    return ContactPage(items=items, next_cursor=next_cursor)


def count_contacts(session: Session, *, org_id: uuid.UUID, spec: dict[str, Any]) -> int:
    query = filtered_query(session, org_id=org_id, spec=spec).with_only_columns(func.count())
    return session.execute(query.order_by(None)).scalar_one()


def matching_ids(session: Session, *, org_id: uuid.UUID, spec: dict[str, Any]) -> list[uuid.UUID]:
    query = filtered_query(session, org_id=org_id, spec=spec).with_only_columns(Contact.id)
    return list(session.execute(query).scalars())


def bulk_update(session: Session, *, org: Organization, contact_ids: list[uuid.UUID], action: dict[str, Any]) -> int:
    """Tag, untag or set the lifecycle stage of these contacts (other organizations' ids are ignored)."""
    ids = list(
        session.execute(
            select(Contact.id).where(Contact.organization_id == org.id, Contact.id.in_(contact_ids))
        ).scalars()
    )
    if action["action"] == "tag":
        tags.tag_contacts(session, org_id=org.id, contact_ids=ids, names=action["tags"])
    elif action["action"] == "untag":
        tags.untag_contacts(session, org_id=org.id, contact_ids=ids, names=action["tags"])
    else:
        stage = check_lifecycle_stage(org, action["lifecycle_stage"])
        session.execute(
            update(Contact).where(Contact.id.in_(ids)).values(lifecycle_stage=stage, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    session.expire_all()
    return len(ids)


def _count_org_contacts(session: Session, org_id: uuid.UUID) -> int:
    return session.execute(
        select(func.count()).select_from(Contact).where(Contact.organization_id == org_id, Contact.deleted_at.is_(None))
    ).scalar_one()


plans.register_usage_counter("contacts", _count_org_contacts)


def upsert_from_whatsapp(session: Session, *, org_id: uuid.UUID, wa_id: str, profile_name: str | None) -> Contact:
    """The contact a webhook's `wa_id` is, created on first contact; its WhatsApp profile name kept fresh.

    A customer who writes in is never refused for the plan's contact limit: their message would be lost.
    The wa_id Meta sends is what we address them by from then on.
    """
    key = identity_key_for_wa_id(wa_id)
    try:
        e164 = normalize_phone("+" + wa_id).e164
    except InvalidInputError:
        e164 = "+" + wa_id  # test ranges and new numbering plans: Meta's digits are the truth
    values = {"organization_id": org_id, "wa_id": wa_id, "phone_e164": e164, "identity_key": key,
              "profile_name": profile_name}
    statement = insert(Contact).values(**values)
    changes = {"wa_id": statement.excluded.wa_id}
    if profile_name:
        changes["profile_name"] = statement.excluded.profile_name
    contact_id = session.execute(
        statement.on_conflict_do_update(
            index_elements=[Contact.organization_id, Contact.identity_key],
            index_where=Contact.deleted_at.is_(None),
            set_=changes,
        ).returning(Contact.id)
    ).scalar_one()
    return session.execute(
        select(Contact).where(Contact.id == contact_id).execution_options(populate_existing=True)
    ).scalar_one()


def _whatsapp_phone(wa_id: str) -> str:
    try:
        return normalize_phone("+" + wa_id).e164
    except InvalidInputError:
        return "+" + wa_id  # test ranges and new numbering plans: Meta's digits are the truth


def change_number(session: Session, *, org_id: uuid.UUID, old_wa_id: str, new_wa_id: str,
                  at: dt.datetime) -> Contact | None:
    """A customer moved their WhatsApp account to a new number at `at` (Meta's `user_changed_number`): the same
    contact, its history and consent kept, now known by the new wa_id, and the old one recorded as its former
    number (`former_numbers`). None when the notice is a repeat (its change is recorded), when nobody here had the
    old number, or when the new number is already another contact that may be someone else (two people's records
    are never merged by a webhook: the change is logged for a person to decide). A contact the new number opened
    only because its messages reached us before the notice is merged into the one that changed
    (shared/services/contact_merge.py)."""
    old_key, new_key = identity_key_for_wa_id(old_wa_id), identity_key_for_wa_id(new_wa_id)
    if _changed_since(session, org_id=org_id, identity_key=old_key, at=at):
        return None
    found = {contact.identity_key: contact for contact in session.execute(
        select(Contact).where(Contact.organization_id == org_id, Contact.identity_key.in_((old_key, new_key)))
        .order_by(Contact.id).with_for_update().execution_options(populate_existing=True)).scalars()}
    old, taken = found.get(old_key), found.get(new_key)
    if old is None or old.wa_id == new_wa_id:
        return None
    if taken is not None and taken.id != old.id:
        if not contact_merge.same_customer(session, old=old, new=taken, changed_at=at):
            log.warning("contacts.number_change_conflict", contact_id=str(old.id), other_contact_id=str(taken.id))
            return None
        contact_merge.merge(session, kept=old, duplicate=taken)
    old.wa_id, old.phone_e164, old.identity_key = new_wa_id, _whatsapp_phone(new_wa_id), new_key
    if old_key != new_key:
        statement = insert(ContactFormerNumber).values(organization_id=org_id, contact_id=old.id, wa_id=old_wa_id,
                                                       identity_key=old_key, changed_at=at)
        session.execute(statement.on_conflict_do_update(
            index_elements=[ContactFormerNumber.organization_id, ContactFormerNumber.identity_key],
            set_={"contact_id": old.id, "wa_id": old_wa_id, "changed_at": at, "updated_at": func.now()},
            where=ContactFormerNumber.changed_at < statement.excluded.changed_at))
    session.flush()
    return old


def _changed_since(session: Session, *, org_id: uuid.UUID, identity_key: str, at: dt.datetime) -> bool:
    return session.execute(select(ContactFormerNumber.id).where(
        ContactFormerNumber.organization_id == org_id, ContactFormerNumber.identity_key == identity_key,
        ContactFormerNumber.changed_at >= at)).first() is not None


@dataclass(frozen=True)
class FormerNumber:
    changed_at: dt.datetime  # Meta's time of the change
    wa_id_now: str  # the number the contact that left it has now


def former_numbers(session: Session, *, org_id: uuid.UUID, wa_ids: set[str]) -> dict[str, FormerNumber]:
    """Those of `wa_ids` that a (live) contact here has left: when, and its number now."""
    key_of = {wa_id: identity_key_for_wa_id(wa_id) for wa_id in wa_ids}
    if not key_of:
        return {}
    rows = session.execute(
        select(ContactFormerNumber.identity_key, ContactFormerNumber.changed_at, Contact.wa_id)
        .join(Contact, Contact.id == ContactFormerNumber.contact_id)
        .where(ContactFormerNumber.organization_id == org_id,
               ContactFormerNumber.identity_key.in_(set(key_of.values())))
    ).all()
    found = {key: FormerNumber(changed_at, wa_id_now) for key, changed_at, wa_id_now in rows}
    return {wa_id: found[key] for wa_id, key in key_of.items() if key in found}


def wa_id_for_user_id(session: Session, *, org_id: uuid.UUID, user_id: str) -> str | None:
    """The wa_id of the contact Meta's business-scoped user id belongs to, if we met them with a phone once."""
    return session.execute(select(Contact.wa_id).where(Contact.organization_id == org_id,
                                                       Contact.user_id == user_id)).scalar_one_or_none()


def note_user_ids(session: Session, *, org_id: uuid.UUID, user_ids: dict[uuid.UUID, str]) -> None:
    """Contacts learn their business-scoped user id (one contact per user id: one already held by another contact
    stays with it, logged for a person to look at)."""
    for contact_id, user_id in user_ids.items():
        holder = session.execute(select(Contact.id).where(Contact.organization_id == org_id,
                                                          Contact.user_id == user_id)).scalar_one_or_none()
        if holder is None:
            session.execute(update(Contact).where(Contact.id == contact_id, Contact.user_id.is_(None))
                            .values(user_id=user_id).execution_options(synchronize_session="fetch"))
        elif holder != contact_id:
            log.warning("contacts.user_id_held_by_another", contact_id=str(contact_id), holder=str(holder))


def upsert_many_from_whatsapp(session: Session, *, org_id: uuid.UUID,
                              profiles: dict[str, str | None]) -> dict[str, Contact]:
    """`upsert_from_whatsapp` for a whole webhook batch in one statement: {wa_id: profile name} -> {wa_id: contact}.

    Two wa_ids of one identity (a Brazilian number with and without its ninth digit) are one row
    (ON CONFLICT DO UPDATE may touch a row once per statement); the last wa_id seen is kept, as a
    second single upsert would leave it.
    """
    by_key: dict[str, dict[str, Any]] = {}
    key_of: dict[str, str] = {}
    for wa_id, profile_name in profiles.items():
        key = key_of[wa_id] = identity_key_for_wa_id(wa_id)
        e164 = _whatsapp_phone(wa_id)
        earlier = by_key.get(key)
        by_key[key] = {"organization_id": org_id, "wa_id": wa_id, "phone_e164": e164, "identity_key": key,
                       "profile_name": profile_name or (earlier["profile_name"] if earlier else None)}
    if not by_key:
        return {}
    statement = insert(Contact).values(list(by_key.values()))
    ids = dict(session.execute(
        statement.on_conflict_do_update(
            index_elements=[Contact.organization_id, Contact.identity_key],
            index_where=Contact.deleted_at.is_(None),
            set_={"wa_id": statement.excluded.wa_id,
                  "profile_name": func.coalesce(statement.excluded.profile_name, Contact.profile_name)},
        ).returning(Contact.identity_key, Contact.id)
    ).all())
    loaded = {contact.identity_key: contact for contact in session.execute(
        select(Contact).where(Contact.id.in_(list(ids.values()))).execution_options(populate_existing=True)
    ).scalars()}
    return {wa_id: loaded[key] for wa_id, key in key_of.items()}
