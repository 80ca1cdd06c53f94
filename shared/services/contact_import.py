"""Contacts pipeline, CSV import: upload → preview → import as a job, with a per-row error report.

- The file is read as a stream (UTF-8, with or without BOM, else Latin-1; `,` or `;`), in
  chunks of CHUNK rows, so memory stays bounded whatever the file's size.
- Rows are matched by phone identity (shared/phones.py): the two forms of a Brazilian mobile,
  a local and an international number are the same person, in the file and in the database.
- Mode `skip_existing` leaves existing contacts alone; `update_existing` fills in what the file
  says. Rows whose values are already stored count as unchanged, so a second run of the same
  file changes nothing.
- Consent is recorded only when the mapped consent column says yes.
- New contacts past the plan's limit are reported row by row, never dropped silently.
"""

from __future__ import annotations

import codecs
import csv
import io
import tempfile
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.errors import InvalidInputError, NotFoundError
from shared.models import (
    ConsentAction,
    ConsentEvent,
    ConsentScope,
    ConsentSource,
    ConsentState,
    Contact,
    ContactImport,
    Job,
    Organization,
    contact_tags,
)
from shared.models.base import utcnow
from shared.phones import InvalidPhoneError, normalize_phone
from shared.security import normalize_email
from shared.services import attributes, plans, tags
from shared.services.contacts import lifecycle_stages
from shared.storage import get_storage

CHUNK = 2000
SAMPLE_BYTES = 64 * 1024
PREVIEW_ROWS = 20
PROFILE_FIELDS = ("name", "email", "language", "lifecycle_stage")
PLAIN_FIELDS = {"phone", *PROFILE_FIELDS, "tags", "marketing_opt_in"}
YES = {"yes", "y", "true", "1", "sim", "si", "s", "oui", "opt-in", "opt_in", "opted_in", "x"}
TAG_SEPARATORS = ("|", ";", ",")
REPORT_COLUMNS = ["row", "column", "value", "reason"]


class ImportNotFoundError(NotFoundError):
    code = "import_not_found"


class ImportMappingError(InvalidInputError):
    code = "invalid_mapping"


class ImportFileError(InvalidInputError):
    code = "invalid_file"


# -- upload -------------------------------------------------------------------------------


def _detect_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # not just a character cut at the sample's end
            return "latin-1"
    return "utf-8"


def _detect_delimiter(first_line: str) -> str:
    return ";" if first_line.count(";") > first_line.count(",") else ","


def create_import(
    session: Session, *, org_id: uuid.UUID, filename: str, stream, created_by_id: uuid.UUID | None
) -> ContactImport:
    import_id = uuid.uuid4()
    key = f"imports/{org_id}/{import_id}.csv"
    storage = get_storage()
    size = storage.save(key, stream)
    if size == 0:
        storage.delete(key)
        raise ImportFileError("The file is empty")
    with storage.open(key) as raw:
        sample = raw.read(SAMPLE_BYTES)
    encoding = _detect_encoding(sample)
    text = sample.decode(encoding, errors="replace")
    first_line = text.splitlines()[0] if text else ""
    delimiter = _detect_delimiter(first_line)
    headers = [h.strip() for h in next(csv.reader([first_line], delimiter=delimiter))]
    if not any(headers):
        storage.delete(key)
        raise ImportFileError("The first line must name the columns")
    record = ContactImport(
        id=import_id,
        organization_id=org_id,
        filename=filename[:255],
        file_key=key,
        size_bytes=size,
        encoding=encoding,
        delimiter=delimiter,
        headers=headers,
        created_by_id=created_by_id,
    )
    session.add(record)
    session.flush()
    return record


def get_import(session: Session, *, org_id: uuid.UUID, import_id: uuid.UUID | str) -> ContactImport:
    try:
        import_uuid = uuid.UUID(str(import_id))
    except ValueError as exc:
        raise ImportNotFoundError(f"import {import_id} not found") from exc
    record = session.execute(
        select(ContactImport).where(ContactImport.id == import_uuid, ContactImport.organization_id == org_id)
    ).scalar_one_or_none()
    if record is None:
        raise ImportNotFoundError(f"import {import_id} not found")
    return record


def sample_rows(record: ContactImport, limit: int = 10) -> list[list[str]]:
    rows = _rows(record)
    next(rows, None)
    return [row for _, row in zip(range(limit), rows)]


def _rows(record: ContactImport) -> Iterator[list[str]]:
    raw = get_storage().open(record.file_key)
    text = io.TextIOWrapper(raw, encoding=record.encoding, errors="replace", newline="")
    return (row for _, row in _numbered(csv.reader(text, delimiter=record.delimiter)))


def _numbered(reader) -> Iterator[tuple[int, list[str]]]:
    for row in reader:
        yield reader.line_num, row


# -- mapping and row classification -------------------------------------------------------


@dataclass(frozen=True)
class Mapping:
    """Which CSV column feeds which contact field."""

    columns: dict[str, str]  # csv column → field ("phone", "name", ..., "attribute:<key>")
    mode: str = "skip_existing"

    def index(self, headers: list[str]) -> dict[str, int]:
        positions = {name: i for i, name in enumerate(headers)}
        return {target: positions[column] for column, target in self.columns.items()}


def validate_mapping(
    session: Session, *, record: ContactImport, columns: dict[str, str], mode: str
) -> tuple[Mapping, list[str]]:
    """The mapping, checked against the file's headers and the organization's attributes; and the ignored columns."""
    types = attributes.attribute_types(session, org_id=record.organization_id)
    problems = {}
    for column, target in columns.items():
        if column not in record.headers:
            problems[column] = f"no column {column!r} in the file"
        elif target not in PLAIN_FIELDS and not (target.startswith("attribute:") and target[10:] in types):
            problems[column] = f"{target!r} is not a contact field or a defined attribute"
    targets = list(columns.values())
    if "phone" not in targets:
        problems["phone"] = "map one column to phone"
    duplicates = sorted({t for t in targets if targets.count(t) > 1})
    if duplicates:
        problems["_fields"] = f"mapped twice: {', '.join(duplicates)}"
    if problems:
        raise ImportMappingError("The column mapping does not fit the file", details={"errors": problems})
    ignored = [h for h in record.headers if h not in columns]
    return Mapping(columns=dict(columns), mode=mode), ignored


@dataclass
class Row:
    number: int
    identity_key: str
    phone_e164: str
    wa_id: str
    fields: dict[str, Any]
    attributes: dict[str, Any]
    tags: list[str]
    opt_in: bool


@dataclass
class RowError:
    number: int
    column: str
    value: str
    reason: str


def _split_tags(cell: str) -> list[str]:
    for separator in TAG_SEPARATORS:
        if separator in cell:
            return [part.strip()[:100] for part in cell.split(separator) if part.strip()]
    return [cell.strip()[:100]] if cell.strip() else []


class RowReader:
    """Turns raw CSV rows into Rows or RowErrors; remembers identities seen earlier in the file."""

    def __init__(self, session: Session, org: Organization, record: ContactImport, mapping: Mapping) -> None:
        self.org = org
        self.positions = mapping.index(record.headers)
        self.columns = {target: column for column, target in mapping.columns.items()}
        self.types = attributes.attribute_types(session, org_id=org.id)
        self.stages = set(lifecycle_stages(org))
        self.first_seen: dict[str, int] = {}

    def _cell(self, raw: list[str], target: str) -> str:
        position = self.positions.get(target)
        return raw[position].strip() if position is not None and position < len(raw) else ""

    def read(self, number: int, raw: list[str]) -> Row | RowError:
        phone_cell = self._cell(raw, "phone")
        try:
            phone = normalize_phone(phone_cell, default_country=self.org.default_country)
        except InvalidPhoneError as exc:
            return RowError(number, self.columns["phone"], phone_cell, exc.details.get("reason", "invalid_number"))
        first = self.first_seen.setdefault(phone.identity_key, number)
        if first != number:
            return RowError(number, self.columns["phone"], phone_cell, f"duplicate_in_file (same person as row {first})")
        fields: dict[str, Any] = {}
        for target in PROFILE_FIELDS:
            value = self._cell(raw, target)
            if not value:
                continue
            if target == "email":
                try:
                    value = normalize_email(value)
                except InvalidInputError:
                    return RowError(number, self.columns[target], value, "invalid_email")
            if target == "lifecycle_stage" and value not in self.stages:
                return RowError(number, self.columns[target], value, "unknown_lifecycle_stage")
            fields[target] = value[:200]
        values: dict[str, Any] = {}
        for target in self.positions:
            if target.startswith("attribute:"):
                key, cell = target[10:], self._cell(raw, target)
                if not cell:
                    continue
                try:
                    values[key] = attributes.coerce_value(key, self.types[key], cell)
                except InvalidInputError:
                    return RowError(number, self.columns[target], cell, f"not_a_{self.types[key].value}")
        return Row(
            number=number,
            identity_key=phone.identity_key,
            phone_e164=phone.e164,
            wa_id=phone.wa_id,
            fields=fields,
            attributes=values,
            tags=_split_tags(self._cell(raw, "tags")),
            opt_in=self._cell(raw, "marketing_opt_in").lower() in YES,
        )


# -- applying a chunk ---------------------------------------------------------------------


@dataclass
class Counts:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_existing: int = 0
    duplicates_in_file: int = 0
    invalid: int = 0
    over_plan_limit: int = 0
    opted_in: int = 0
    errors: list[RowError] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if k != "errors"}


class ChunkWriter:
    """Writes one chunk of Rows in a handful of set-wise statements."""

    def __init__(self, session: Session, org: Organization, mapping: Mapping, counts: Counts, import_id: uuid.UUID):
        self.session, self.org, self.mapping, self.counts = session, org, mapping, counts
        self.import_id = import_id
        usage = plans.resource_usage(session, org=org, resource="contacts")
        self.room = None if usage.limit is None else max(0, usage.limit - usage.used)

    def _existing(self, keys: list[str]) -> dict[str, Contact]:
        found = self.session.execute(
            select(Contact).where(Contact.organization_id == self.org.id, Contact.identity_key.in_(keys))
        ).scalars()
        return {contact.identity_key: contact for contact in found}

    def write(self, rows: list[Row]) -> None:
        existing = self._existing([row.identity_key for row in rows])
        contact_ids: dict[str, uuid.UUID] = {key: contact.id for key, contact in existing.items()}
        creates = [row for row in rows if row.identity_key not in existing]
        if self.room is not None and len(creates) > self.room:
            for row in creates[self.room:]:
                self.counts.errors.append(RowError(row.number, "", row.phone_e164, "plan_limit_exceeded"))
            self.counts.over_plan_limit += len(creates) - self.room
            creates = creates[: self.room]
        if creates:
            contact_ids.update(self._insert(creates))
        self._update([row for row in rows if row.identity_key in existing], existing)
        kept = [row for row in rows if row.identity_key in contact_ids]
        self._tag(kept, contact_ids)
        self._opt_in(kept, contact_ids, existing)

    def _insert(self, rows: list[Row]) -> dict[str, uuid.UUID]:
        values = [
            {
                "organization_id": self.org.id,
                "identity_key": row.identity_key,
                "phone_e164": row.phone_e164,
                "wa_id": row.wa_id,
                "name": row.fields.get("name"),
                "email": row.fields.get("email"),
                "language": row.fields.get("language"),
                "lifecycle_stage": row.fields.get("lifecycle_stage", "lead"),
                "custom_attributes": row.attributes,
            }
            for row in rows
        ]
        statement = (
            insert(Contact)
            .values(values)
            .on_conflict_do_nothing(
                index_elements=[Contact.organization_id, Contact.identity_key],
                index_where=Contact.deleted_at.is_(None),
            )
            .returning(Contact.identity_key, Contact.id)
        )
        inserted = dict(self.session.execute(statement).all())
        self.counts.created += len(inserted)
        if self.room is not None:
            self.room -= len(inserted)
        return inserted

    def _update(self, rows: list[Row], existing: dict[str, Contact]) -> None:
        if self.mapping.mode != "update_existing":
            self.counts.skipped_existing += len(rows)
            return
        changes = []
        for row in rows:
            contact = existing[row.identity_key]
            change = {f: v for f, v in row.fields.items() if getattr(contact, f) != v}
            merged = {**contact.custom_attributes, **row.attributes}
            if merged != contact.custom_attributes:
                change["custom_attributes"] = merged
            if change:
                changes.append({"id": contact.id, "updated_at": utcnow(), **change})
            else:
                self.counts.unchanged += 1
        for change in changes:  # grouped executemany by key set would be faster; updates are the rare case
            self.session.execute(
                update(Contact).where(Contact.id == change.pop("id")).values(**change)
                .execution_options(synchronize_session=False)
            )
        self.counts.updated += len(changes)

    def _tag(self, rows: list[Row], contact_ids: dict[str, uuid.UUID]) -> None:
        names = {name for row in rows for name in row.tags}
        if not names:
            return
        tag_ids = tags.ensure_tags(self.session, org_id=self.org.id, names=names)
        pairs = [
            {"contact_id": contact_ids[row.identity_key], "tag_id": tag_ids[name]}
            for row in rows
            for name in set(row.tags)
        ]
        self.session.execute(insert(contact_tags).values(pairs).on_conflict_do_nothing())

    def _opt_in(self, rows: list[Row], contact_ids: dict[str, uuid.UUID], existing: dict[str, Contact]) -> None:
        wanted = [
            contact_ids[row.identity_key]
            for row in rows
            if row.opt_in
            and (row.identity_key not in existing or existing[row.identity_key].marketing_consent != ConsentState.opted_in)
        ]
        if not wanted:
            return
        now = utcnow()
        self.session.execute(
            insert(ConsentEvent),
            [
                {
                    "organization_id": self.org.id,
                    "contact_id": contact_id,
                    "action": ConsentAction.opt_in,
                    "scope": ConsentScope.marketing,
                    "source": ConsentSource.import_,
                    "actor": f"import {self.import_id}",
                    "evidence": "consent column of the imported file",
                    "occurred_at": now,
                }
                for contact_id in wanted
            ],
        )
        self.session.execute(
            update(Contact).where(Contact.id.in_(wanted)).values(marketing_consent=ConsentState.opted_in)
            .execution_options(synchronize_session=False)
        )
        self.counts.opted_in += len(wanted)


# -- preview and run ----------------------------------------------------------------------


def preview(session: Session, *, org: Organization, record: ContactImport, mapping: Mapping) -> list[dict[str, Any]]:
    """What the first rows would do, without writing anything."""
    reader = RowReader(session, org, record, mapping)
    outcomes, parsed = [], []
    rows = _rows(record)
    next(rows, None)
    numbered = ((n, raw) for n, raw in enumerate(rows, start=2) if any(cell.strip() for cell in raw))
    for number, raw in (pair for _, pair in zip(range(PREVIEW_ROWS), numbered)):
        result = reader.read(number, raw)
        if isinstance(result, RowError):
            action = "skip" if result.reason.startswith("duplicate_in_file") else "invalid"
            outcomes.append({"row": number, "action": action, "phone": result.value, "reason": result.reason})
        else:
            parsed.append(result)
            outcomes.append({"row": number, "action": None, "phone": result.phone_e164, "reason": None})
    existing = {
        key for key in session.execute(
            select(Contact.identity_key).where(
                Contact.organization_id == org.id, Contact.identity_key.in_([row.identity_key for row in parsed])
            )
        ).scalars()
    }
    by_number = {row.number: row for row in parsed}
    for outcome in outcomes:
        row = by_number.get(outcome["row"])
        if row is not None:
            if row.identity_key not in existing:
                outcome["action"] = "create"
            else:
                outcome["action"] = "update" if mapping.mode == "update_existing" else "skip"
                outcome["reason"] = "exists" if mapping.mode != "update_existing" else None
    return outcomes


def run_import(session: Session, *, job: Job, progress) -> dict[str, Any]:
    org = session.get(Organization, job.organization_id)
    record = get_import(session, org_id=org.id, import_id=job.params["import_id"])
    mapping = Mapping(columns=job.params["columns"], mode=job.params["mode"])
    reader = RowReader(session, org, record, mapping)
    counts = Counts()
    writer = ChunkWriter(session, org, mapping, counts, record.id)

    raw = get_storage().open(record.file_key)
    text = io.TextIOWrapper(raw, encoding=record.encoding, errors="replace", newline="")
    csv_rows = _numbered(csv.reader(text, delimiter=record.delimiter))
    next(csv_rows, None)  # the header
    chunk: list[Row] = []
    with raw:
        for number, cells in csv_rows:
            if not any(cell.strip() for cell in cells):
                continue
            counts.rows += 1
            result = reader.read(number, cells)
            if isinstance(result, RowError):
                counts.errors.append(result)
                if result.reason.startswith("duplicate_in_file"):
                    counts.duplicates_in_file += 1
                else:
                    counts.invalid += 1
                continue
            chunk.append(result)
            if len(chunk) >= CHUNK:
                writer.write(chunk)
                chunk = []
                progress(min(99, int(100 * raw.tell() / max(1, record.size_bytes))), f"{counts.rows} rows read")
        if chunk:
            writer.write(chunk)

    record.report_key = _save_report(record, counts.errors) if counts.errors else None
    record.job_id = job.id
    session.flush()
    return {**counts.as_dict(), "errors": len(counts.errors), "has_report": record.report_key is not None}


def _save_report(record: ContactImport, errors: list[RowError]) -> str:
    key = f"imports/{record.organization_id}/{record.id}-errors.csv"
    with tempfile.TemporaryFile("w+b") as buffer:
        text = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(REPORT_COLUMNS)
        writer.writerows(sorted(([e.number, e.column, e.value, e.reason] for e in errors), key=lambda r: r[0]))
        text.flush()
        buffer.seek(0)
        get_storage().save(key, buffer)
        text.detach()
    return key
