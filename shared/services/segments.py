"""Segments: saved contact filters with a live count, usable later as campaign audiences."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db import ensure_name_free, get_owned
from shared.errors import ConflictError, NotFoundError
from shared.models import Segment
from shared.services import attributes
from shared.services.contact_filters import contact_conditions


class SegmentNotFoundError(NotFoundError):
    code = "segment_not_found"


def _check_filters(session: Session, org_id: uuid.UUID, filters: dict[str, Any]) -> None:
    # Building the conditions validates attribute keys and operators now, not when the segment is used.
    contact_conditions(filters, org_id=org_id, attribute_types=attributes.attribute_types(session, org_id=org_id))


def create_segment(
    session: Session, *, org_id: uuid.UUID, name: str, filters: dict[str, Any], description: str | None = None
) -> Segment:
    _check_filters(session, org_id, filters)
    ensure_name_free(session, Segment, org_id=org_id, name=name,
                     taken=ConflictError, what="segment")
    segment = Segment(organization_id=org_id, name=name, filters=filters, description=description)
    session.add(segment)
    session.flush()
    return segment


def get_segment(session: Session, *, org_id: uuid.UUID, segment_id: uuid.UUID | str) -> Segment:
    return get_owned(session, Segment, segment_id, org_id=org_id, not_found=SegmentNotFoundError)


def list_segments(session: Session, *, org_id: uuid.UUID) -> list[Segment]:
    return list(
        session.execute(select(Segment).where(Segment.organization_id == org_id).order_by(Segment.name)).scalars()
    )


def update_segment(session: Session, *, segment: Segment, changes: dict[str, Any]) -> Segment:
    if "filters" in changes:
        _check_filters(session, segment.organization_id, changes["filters"])
    if "name" in changes:
        ensure_name_free(session, Segment, org_id=segment.organization_id, name=changes["name"],
                         taken=ConflictError, what="segment", except_id=segment.id)
    for field, value in changes.items():
        setattr(segment, field, value)
    session.flush()
    return segment


def delete_segment(session: Session, *, segment: Segment) -> None:
    segment.soft_delete()
    session.flush()
