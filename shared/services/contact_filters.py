"""Contact filters: one spec (a dict) → SQL conditions, shared by the list, segments, bulk actions,
exports and, later, campaign audiences.

Spec keys (all optional, all combined with AND):
  tags_any / tags_all / tags_none: [tag names]
  lifecycle_stages: [stage]
  marketing_consent / utility_consent: "opted_in" | "opted_out" | "unknown"
  blocked: true | false
  lead_score_min / lead_score_max: int
  created_after / created_before / last_seen_after / last_seen_before: ISO datetimes
  attributes: [{"key": k, "op": "eq|neq|gt|gte|lt|lte|contains|exists|not_exists", "value": v}]
  q: free text over name, phone and email
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import ColumnElement, Date, Numeric, and_, cast, exists, func, literal_column, not_, select
from sqlalchemy.dialects.postgresql import JSONB

from shared.errors import InvalidInputError
from shared.models import AttributeType, Contact, Tag, contact_tags

ATTRIBUTE_OPS = {"eq", "neq", "gt", "gte", "lt", "lte", "contains", "exists", "not_exists"}
ORDERED_OPS = {"gt", "gte", "lt", "lte"}
# Written with inline constants so it is the very expression the trigram index is built on.
_BLANK, _SPACE = literal_column("''"), literal_column("' '")
SEARCH_TEXT = (
    func.coalesce(Contact.name, _BLANK).op("||")(_SPACE).op("||")(Contact.phone_e164).op("||")(_SPACE)
    .op("||")(func.coalesce(Contact.email, _BLANK))
)


def like_pattern(text: str) -> str:
    """`%text%` with the user's own % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class InvalidFilterError(InvalidInputError):
    code = "invalid_filter"


def _has_tag(names: list[str]) -> ColumnElement[bool]:
    return exists(
        select(1)
        .select_from(contact_tags.join(Tag, Tag.id == contact_tags.c.tag_id))
        .where(contact_tags.c.contact_id == Contact.id, Tag.name.in_(names))
    )


def _as_datetime(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


def _attribute_condition(condition: dict, types: dict[str, AttributeType]) -> ColumnElement[bool]:
    key, op, value = condition["key"], condition["op"], condition.get("value")
    if key not in types:
        raise InvalidFilterError(f"No custom attribute {key!r} is defined", details={"attribute": key})
    if op not in ATTRIBUTE_OPS:
        raise InvalidFilterError(f"Unknown operator {op!r}", details={"allowed": sorted(ATTRIBUTE_OPS)})
    kind = types[key]
    raw = Contact.custom_attributes[key].astext
    if op == "exists":
        return Contact.custom_attributes.has_key(key)
    if op == "not_exists":
        return not_(Contact.custom_attributes.has_key(key))
    if op in ("eq", "neq"):
        # @> uses the GIN index on custom_attributes.
        matches = Contact.custom_attributes.contains(cast({key: value}, JSONB))
        return matches if op == "eq" else not_(matches)
    if op == "contains":
        if kind != AttributeType.text:
            raise InvalidFilterError(f"'contains' works on text attributes; {key!r} is {kind.value}")
        return raw.ilike(like_pattern(str(value)), escape="\\")
    if kind == AttributeType.number:
        typed, bound = cast(raw, Numeric), value
    elif kind == AttributeType.date:
        typed, bound = cast(raw, Date), dt.date.fromisoformat(str(value))
    else:
        raise InvalidFilterError(f"{op!r} compares numbers or dates; {key!r} is {kind.value}")
    return {"gt": typed > bound, "gte": typed >= bound, "lt": typed < bound, "lte": typed <= bound}[op]


def contact_conditions(
    spec: dict[str, Any], *, org_id: uuid.UUID, attribute_types: dict[str, AttributeType]
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Contact.organization_id == org_id]
    if spec.get("tags_any"):
        conditions.append(_has_tag(spec["tags_any"]))
    for name in spec.get("tags_all") or []:
        conditions.append(_has_tag([name]))
    if spec.get("tags_none"):
        conditions.append(not_(_has_tag(spec["tags_none"])))
    if spec.get("lifecycle_stages"):
        conditions.append(Contact.lifecycle_stage.in_(spec["lifecycle_stages"]))
    for field in ("marketing_consent", "utility_consent"):
        if spec.get(field):
            conditions.append(getattr(Contact, field) == spec[field])
    if spec.get("blocked") is not None:
        conditions.append(Contact.blocked_at.is_not(None) if spec["blocked"] else Contact.blocked_at.is_(None))
    if spec.get("lead_score_min") is not None:
        conditions.append(Contact.lead_score >= spec["lead_score_min"])
    if spec.get("lead_score_max") is not None:
        conditions.append(Contact.lead_score <= spec["lead_score_max"])
    for field, column, compare in (
        ("created_after", Contact.created_at, "ge"),
        ("created_before", Contact.created_at, "lt"),
        ("last_seen_after", Contact.last_inbound_at, "ge"),
        ("last_seen_before", Contact.last_inbound_at, "lt"),
    ):
        if spec.get(field):
            bound = _as_datetime(spec[field])
            conditions.append(column >= bound if compare == "ge" else column < bound)
    for condition in spec.get("attributes") or []:
        conditions.append(_attribute_condition(condition, attribute_types))
    if spec.get("q"):
        conditions.append(SEARCH_TEXT.ilike(like_pattern(spec["q"].strip()), escape="\\"))
    return [and_(*conditions)]


def job_filters(params: dict[str, Any]) -> dict[str, Any]:
    """A contacts job's filters; `filter` is the name jobs queued before the API said `filters` carry."""
    return params.get("filters", params.get("filter")) or {}
