"""Contacts pipeline, CSV import: the file's rows read, checked and staged for COPY (the import's parser thread).

A row becomes a Row (valid) or a RowError (what the error report says); valid rows are written
as the CSV lines COPY reads, a chunk at a time (shared/services/contact_import_writer.py).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy.orm import Session

from shared.errors import InvalidInputError
from shared.models import ContactImport, Organization
from shared.phones import InvalidPhoneError, normalize_phone
from shared.security import normalize_email
from shared.services import attributes
from shared.services.contacts import lifecycle_stages

if TYPE_CHECKING:
    from shared.services.contact_import import Mapping

PROFILE_FIELDS = ("name", "email", "language", "lifecycle_stage")
YES = {"yes", "y", "true", "1", "sim", "si", "s", "oui", "opt-in", "opt_in", "opted_in", "x"}
TAG_SEPARATORS = ("|", ";", ",")


class Row(NamedTuple):
    """A valid row of the file, in the staging table's column order."""

    number: int
    identity_key: str
    phone_e164: str
    wa_id: str
    name: str | None
    email: str | None
    language: str | None
    lifecycle_stage: str | None
    attributes: dict[str, Any] | None  # None when the file sets none, as for tags
    tags: list[str] | None
    opt_in: bool


@dataclass
class RowError:
    number: int
    column: str
    value: str
    reason: str


def _split_tags(cell: str) -> list[str]:
    """The cell's tags, each once (the writer inserts a new contact's tags without ON CONFLICT)."""
    for separator in TAG_SEPARATORS:
        if separator in cell:
            return list(dict.fromkeys(part.strip()[:100] for part in cell.split(separator) if part.strip()))
    return [cell.strip()[:100]] if cell.strip() else []


def _cell(raw: list[str], position: int | None) -> str:
    return raw[position].strip() if position is not None and position < len(raw) else ""


class RowReader:
    """Turns raw CSV rows into Rows or RowErrors; remembers identities seen earlier in the file."""

    def __init__(self, session: Session, org: Organization, record: ContactImport, mapping: Mapping) -> None:
        self.default_country = org.default_country
        positions = mapping.index(record.headers)
        self.columns = {target: column for column, target in mapping.columns.items()}
        self.types = attributes.attribute_types(session, org_id=org.id)
        self.stages = set(lifecycle_stages(org))
        self.first_seen: dict[str, int] = {}
        # Where each field is, looked up once: read() runs for every row of the file.
        self.phone_at = positions["phone"]
        self.profile_at = [positions.get(target) for target in PROFILE_FIELDS]
        self.attributes_at = [(target, position) for target, position in positions.items()
                              if target.startswith("attribute:")]
        self.tags_at = positions.get("tags")
        self.opt_in_at = positions.get("marketing_opt_in")

    def read(self, number: int, raw: list[str]) -> Row | RowError:
        phone_cell = _cell(raw, self.phone_at)
        try:
            phone = normalize_phone(phone_cell, default_country=self.default_country)
        except InvalidPhoneError as exc:
            return RowError(number, self.columns["phone"], phone_cell, exc.details.get("reason", "invalid_number"))
        first = self.first_seen.setdefault(phone.identity_key, number)
        if first != number:
            return RowError(number, self.columns["phone"], phone_cell, f"duplicate_in_file (same person as row {first})")
        name, email, language, stage = [_cell(raw, position) for position in self.profile_at]
        if email:
            try:
                email = normalize_email(email)
            except InvalidInputError:
                return RowError(number, self.columns["email"], email, "invalid_email")
        if stage and stage not in self.stages:
            return RowError(number, self.columns["lifecycle_stage"], stage, "unknown_lifecycle_stage")
        values = self._attributes(number, raw)
        if isinstance(values, RowError):
            return values
        return Row(
            number, phone.identity_key, phone.e164, phone.wa_id,
            name[:200] or None, email[:200] or None, language[:200] or None, stage[:200] or None,
            values or None, _split_tags(_cell(raw, self.tags_at)) or None,
            _cell(raw, self.opt_in_at).lower() in YES,
        )

    def _attributes(self, number: int, raw: list[str]) -> dict[str, Any] | RowError:
        values: dict[str, Any] = {}
        for target, position in self.attributes_at:
            cell = _cell(raw, position)
            if not cell:
                continue
            key = target[10:]
            try:
                values[key] = attributes.coerce_value(key, self.types[key], cell)
            except InvalidInputError:
                return RowError(number, self.columns[target], cell, f"not_a_{self.types[key].value}")
        return values


class StagedChunk:
    """Rows as the CSV lines COPY reads, written by the parser thread, and what the writer needs to know of them.

    The writer then sends one buffer per chunk: row by row, COPY's encoding ran on the writer's
    thread and took the GIL back from the parser for every 32 kB sent, leaving PostgreSQL idle.
    """

    def __init__(self) -> None:
        self._lines = io.StringIO()
        # The default \r\n line end makes csv quote any value holding \r or \n, as COPY needs; None
        # (and only None: empty values are None) is written as nothing, COPY's NULL.
        self._csv = csv.writer(self._lines)
        self.size = 0
        self.tag_names: set[str] = set()
        self.opting_in = False
        self.rows_read = 0  # rows of the file read by the end of this chunk
        self.position = 0  # bytes of the file read by then

    def add(self, row: Row) -> None:
        self._csv.writerow((
            row.number, row.identity_key, row.phone_e164, row.wa_id, row.name, row.email, row.language,
            row.lifecycle_stage, json.dumps(row.attributes) if row.attributes else None,
            # No tag holds a "|": _split_tags splits on it first.
            "|".join(row.tags) if row.tags else None, row.opt_in,
        ))
        self.size += 1
        if row.tags:
            self.tag_names.update(row.tags)
        self.opting_in = self.opting_in or row.opt_in

    def data(self) -> bytes:
        return self._lines.getvalue().encode()
