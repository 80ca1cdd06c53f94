"""Custom attribute definitions: the typed fields an organization keeps on its contacts."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.errors import ConflictError, InvalidInputError, NotFoundError
from shared.models import AttributeDefinition, AttributeType

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
TRUE_WORDS = {"true", "yes", "y", "1", "sim", "si", "oui"}
FALSE_WORDS = {"false", "no", "n", "0", "nao", "não"}


class AttributeValueError(InvalidInputError):
    code = "invalid_attribute"


def attribute_types(session: Session, *, org_id: uuid.UUID) -> dict[str, AttributeType]:
    rows = session.execute(
        select(AttributeDefinition.key, AttributeDefinition.type).where(AttributeDefinition.organization_id == org_id)
    ).all()
    return {key: kind for key, kind in rows}


def list_definitions(session: Session, *, org_id: uuid.UUID) -> list[AttributeDefinition]:
    return list(
        session.execute(
            select(AttributeDefinition).where(AttributeDefinition.organization_id == org_id).order_by(AttributeDefinition.key)
        ).scalars()
    )


def create_definition(
    session: Session, *, org_id: uuid.UUID, key: str, label: str, type: AttributeType
) -> AttributeDefinition:
    if not KEY_PATTERN.match(key):
        raise InvalidInputError("Attribute keys are lower-case letters, digits and _", details={"field": "key"})
    if key in attribute_types(session, org_id=org_id):
        raise ConflictError(f"Attribute {key!r} already exists", details={"field": "key"})
    definition = AttributeDefinition(organization_id=org_id, key=key, label=label, type=type)
    session.add(definition)
    session.flush()
    return definition


def delete_definition(session: Session, *, org_id: uuid.UUID, key: str) -> None:
    definition = session.execute(
        select(AttributeDefinition).where(AttributeDefinition.organization_id == org_id, AttributeDefinition.key == key)
    ).scalar_one_or_none()
    if definition is None:
        raise NotFoundError(f"attribute {key!r} not found")
    session.delete(definition)
    session.flush()


def coerce_value(key: str, kind: AttributeType, value: Any) -> Any:
    """The JSON value stored for `value` (a typed value or text from a CSV cell); raises on a mismatch."""
    if value is None or value == "":
        return None
    try:
        if kind == AttributeType.text:
            return str(value)
        if kind == AttributeType.number:
            if isinstance(value, bool):
                raise ValueError
            number = float(str(value).replace(",", ".")) if isinstance(value, str) else float(value)
            return int(number) if number.is_integer() else number
        if kind == AttributeType.boolean:
            if isinstance(value, bool):
                return value
            word = str(value).strip().lower()
            if word in TRUE_WORDS | FALSE_WORDS:
                return word in TRUE_WORDS
            raise ValueError
        if kind == AttributeType.date:
            return (value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value).strip())).isoformat()
    except ValueError:
        pass
    raise AttributeValueError(
        f"{key!r} takes a {kind.value}; {value!r} is not one", details={"attribute": key, "type": kind.value}
    )


def coerce_attributes(types: dict[str, AttributeType], values: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise AttributeValueError(
            f"Unknown custom attribute(s): {', '.join(unknown)}; define them first", details={"unknown": unknown}
        )
    return {key: coerce_value(key, types[key], value) for key, value in values.items()}
