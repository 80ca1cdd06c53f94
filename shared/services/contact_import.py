"""Contacts pipeline, CSV import: upload → preview → import as a job, with a per-row error report.

- The file is read as a stream (UTF-8, with or without BOM, else Latin-1; `,` or `;`), in
  chunks of CHUNK rows, so memory stays bounded whatever the file's size.
- Rows are matched by phone identity (shared/phones.py): the two forms of a Brazilian mobile,
  a local and an international number are the same person, in the file and in the database.
- Mode `skip_existing` leaves existing contacts alone; `update_existing` fills in what the file
  says. Rows whose values are already stored count as unchanged, so a second run of the same
  file changes nothing.
- Consent is recorded only when the mapped consent column says yes, and for a contact that
  exists already only in `update_existing` mode (skipping a contact leaves its consent alone).
- New contacts past the plan's limit are reported row by row, never dropped silently.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import queue
import threading
import tempfile
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator, NamedTuple

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from shared.db import get_owned
from shared.errors import InvalidInputError, NotFoundError
from shared.models import Contact, ContactImport, Job, Organization
from shared.phones import InvalidPhoneError, normalize_phone
from shared.security import normalize_email
from shared.services import attributes, plans
from shared.services.contacts import lifecycle_stages
from shared.storage import get_storage

CHUNK = 5000
READ_AHEAD = 8  # chunks parsed and waiting for the writer: a few MB
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
    return get_owned(session, ContactImport, import_id, org_id=org_id, not_found=ImportNotFoundError)


def sample_rows(record: ContactImport, limit: int = 10) -> list[list[str]]:
    rows = _rows(record)
    next(rows, None)
    return [row for _, row in zip(range(limit), rows)]


def _rows(record: ContactImport) -> Iterator[list[str]]:
    raw = get_storage().open(record.file_key)
    text = io.TextIOWrapper(raw, encoding=record.encoding, errors="replace", newline="")
    return csv.reader(text, delimiter=record.delimiter)


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
    for separator in TAG_SEPARATORS:
        if separator in cell:
            return [part.strip()[:100] for part in cell.split(separator) if part.strip()]
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

    def add_error(self, error: RowError) -> None:
        self.errors.append(error)
        if error.reason.startswith("duplicate_in_file"):
            self.duplicates_in_file += 1
        else:
            self.invalid += 1

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if k != "errors"}


class ChunkWriter:
    """Writes one staged chunk: one COPY into a temporary table, then set-wise SQL.

    Everything after the COPY (the plan limit, inserts, updates, tags, consent events) runs
    inside PostgreSQL, so the writer's Python does nothing per row. Compiling a VALUES list per
    chunk would cost more than the import.

    PostgreSQL is the slower half of the import (the parser thread keeps ahead of it), so each
    statement runs only when the chunk needs it, and existing contacts are found by one index
    probe per row: a join would hash the organization's every contact for every chunk.
    """

    _STAGE = """
        CREATE TEMP TABLE IF NOT EXISTS import_rows (
            row_number int, identity_key text, phone_e164 text, wa_id text, name text, email text,
            language text, lifecycle_stage text, custom_attributes jsonb, tags text, opt_in boolean,
            contact_id uuid, is_new boolean NOT NULL DEFAULT false
        ) ON COMMIT DROP
    """
    _COPY = (
        "COPY import_rows (row_number, identity_key, phone_e164, wa_id, name, email, language, lifecycle_stage, "
        "custom_attributes, tags, opt_in) FROM STDIN (FORMAT csv)"
    )
    # ON CONFLICT finds the rows that exist already: they keep contact_id NULL for _FIND_EXISTING.
    _INSERT = """
        WITH inserted AS (
            INSERT INTO contacts (organization_id, identity_key, phone_e164, wa_id, name, email, language,
                                  lifecycle_stage, custom_attributes, marketing_consent)
            SELECT :org, identity_key, phone_e164, wa_id, name, email, language, coalesce(lifecycle_stage, 'lead'),
                   coalesce(custom_attributes, '{}'),
                   CASE WHEN opt_in THEN 'opted_in' ELSE 'unknown' END::consent_state
            FROM import_rows
            ON CONFLICT (organization_id, identity_key) WHERE deleted_at IS NULL DO NOTHING
            RETURNING id, identity_key, marketing_consent
        ), consented AS (
            INSERT INTO consent_events (organization_id, contact_id, action, scope, source, actor, evidence)
            SELECT :org, id, 'opt_in', 'marketing', 'import', :actor, :evidence
            FROM inserted WHERE marketing_consent = 'opted_in'
        ), marked AS (
            UPDATE import_rows r SET contact_id = inserted.id, is_new = true
            FROM inserted WHERE r.identity_key = inserted.identity_key
        )
        SELECT count(*), count(*) FILTER (WHERE marketing_consent = 'opted_in') FROM inserted
    """
    _FIND_EXISTING = """
        UPDATE import_rows r SET contact_id = (
            SELECT c.id FROM contacts c
            WHERE c.organization_id = :org AND c.identity_key = r.identity_key AND c.deleted_at IS NULL
        )
        WHERE r.contact_id IS NULL
    """
    _UPDATE = """
        UPDATE contacts c SET
            name = coalesce(r.name, c.name), email = coalesce(r.email, c.email),
            language = coalesce(r.language, c.language), lifecycle_stage = coalesce(r.lifecycle_stage, c.lifecycle_stage),
            custom_attributes = c.custom_attributes || coalesce(r.custom_attributes, '{}'), updated_at = now()
        FROM import_rows r
        WHERE c.id = r.contact_id AND NOT r.is_new AND (
            (r.name IS NOT NULL AND r.name IS DISTINCT FROM c.name)
            OR (r.email IS NOT NULL AND r.email IS DISTINCT FROM c.email)
            OR (r.language IS NOT NULL AND r.language IS DISTINCT FROM c.language)
            OR (r.lifecycle_stage IS NOT NULL AND r.lifecycle_stage <> c.lifecycle_stage)
            OR (r.custom_attributes IS NOT NULL AND NOT (c.custom_attributes @> r.custom_attributes))
        )
    """
    _OPT_IN_EXISTING = """
        WITH changed AS (
            UPDATE contacts c SET marketing_consent = 'opted_in'
            FROM import_rows r
            WHERE c.id = r.contact_id AND NOT r.is_new AND r.opt_in AND c.marketing_consent <> 'opted_in'
            RETURNING c.id
        )
        INSERT INTO consent_events (organization_id, contact_id, action, scope, source, actor, evidence)
        SELECT :org, id, 'opt_in', 'marketing', 'import', :actor, :evidence FROM changed
    """
    _TAGS = """
        INSERT INTO tags (organization_id, name)
        SELECT DISTINCT :org, tag FROM import_rows, unnest(string_to_array(tags, '|')) AS tag
        ON CONFLICT (organization_id, name) DO NOTHING
    """
    _TAG_CONTACTS = """
        INSERT INTO contact_tags (contact_id, tag_id)
        SELECT r.contact_id, t.id
        FROM import_rows r CROSS JOIN LATERAL unnest(string_to_array(r.tags, '|')) AS wanted(name)
        JOIN tags t ON t.organization_id = :org AND t.name = wanted.name
        WHERE r.contact_id IS NOT NULL
        ON CONFLICT DO NOTHING
    """

    def __init__(self, session: Session, org: Organization, mapping: Mapping, counts: Counts, import_id: uuid.UUID):
        self.session, self.org, self.counts = session, org, counts
        self.updating = mapping.mode == "update_existing"
        self.known_tags: set[str] = set()  # tag names this import has made sure exist
        self.consent = {"org": org.id, "actor": f"import {import_id}", "evidence": "consent column of the imported file"}
        usage = plans.resource_usage(session, org=org, resource="contacts")
        self.room = None if usage.limit is None else max(0, usage.limit - usage.used)
        session.execute(text(self._STAGE))

    def _sql(self, statement: str, **params) -> int:
        return self.session.execute(text(statement), {"org": self.org.id, **params}).rowcount

    def write(self, chunk: StagedChunk) -> None:
        self._copy(chunk)
        admitted = chunk.size - self._enforce_plan_limit()
        created, opted_in = self.session.execute(text(self._INSERT), {"org": self.org.id, **self.consent}).one()
        existing = admitted - created
        self.counts.created += created
        self.counts.opted_in += opted_in
        if existing and (self.updating or chunk.tag_names):
            self._sql(self._FIND_EXISTING)
        if self.updating:
            self._update_existing(chunk, existing)
        else:
            self.counts.skipped_existing += existing
        if chunk.tag_names:
            self._tag(chunk.tag_names)
        if self.room is not None:
            self.room = max(0, self.room - created)

    def _tag(self, names: set[str]) -> None:
        if not names <= self.known_tags:  # a file repeats a few tags: the first chunks create them
            self._sql(self._TAGS)
            self.known_tags |= names
        self._sql(self._TAG_CONTACTS)

    def _update_existing(self, chunk: StagedChunk, existing: int) -> None:
        if not existing:
            return
        updated = self._sql(self._UPDATE)
        self.counts.updated += updated
        self.counts.unchanged += existing - updated
        if chunk.opting_in:
            self.counts.opted_in += self._sql(self._OPT_IN_EXISTING, **self.consent)

    def _copy(self, chunk: StagedChunk) -> None:
        cursor = self.session.connection().connection.dbapi_connection.cursor()
        cursor.execute("TRUNCATE import_rows")
        with cursor.copy(self._COPY) as copy:
            copy.write(chunk.data())

    def _enforce_plan_limit(self) -> int:
        """New contacts past the plan's limit are taken out of the chunk and reported, row by row; returns how many."""
        if self.room is None:
            return 0
        over = self.session.execute(
            text("SELECT row_number, phone_e164 FROM import_rows r WHERE NOT EXISTS ("
                 " SELECT 1 FROM contacts c WHERE c.organization_id = :org AND c.identity_key = r.identity_key"
                 " AND c.deleted_at IS NULL) ORDER BY row_number OFFSET :room"),
            {"org": self.org.id, "room": self.room},
        ).all()
        if not over:
            return 0
        self.session.execute(
            text("DELETE FROM import_rows WHERE row_number = ANY(:numbers)"), {"numbers": [n for n, _ in over]}
        )
        self.counts.over_plan_limit += len(over)
        self.counts.errors.extend(RowError(n, "", phone, "plan_limit_exceeded") for n, phone in over)
        return len(over)


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
    with raw:
        for chunk in _read_ahead(_staged_chunks(raw, record, reader, counts)):
            writer.write(chunk)
            progress(min(99, int(100 * chunk.position / max(1, record.size_bytes))), f"{chunk.rows_read} rows read")

    record.report_key = _save_report(record, counts.errors) if counts.errors else None
    record.job_id = job.id
    session.flush()
    return {**counts.as_dict(), "errors": len(counts.errors), "has_report": record.report_key is not None}


def _staged_chunks(raw, record: ContactImport, reader: RowReader, counts: Counts) -> Iterator[StagedChunk]:
    text = io.TextIOWrapper(raw, encoding=record.encoding, errors="replace", newline="")
    csv_rows = csv.reader(text, delimiter=record.delimiter)
    next(csv_rows, None)  # the header
    chunk = StagedChunk()
    for cells in csv_rows:
        if not "".join(cells).strip():
            continue
        counts.rows += 1
        result = reader.read(csv_rows.line_num, cells)
        if isinstance(result, RowError):
            counts.add_error(result)
            continue
        chunk.add(result)
        if chunk.size >= CHUNK:
            chunk.rows_read, chunk.position = counts.rows, raw.tell()
            yield chunk
            chunk = StagedChunk()
    if chunk.size:
        chunk.rows_read, chunk.position = counts.rows, raw.tell()
        yield chunk
    text.detach()


def _read_ahead(chunks: Iterator[StagedChunk]) -> Iterator[StagedChunk]:
    """The chunks, parsed in a thread while the caller writes the ones before.

    Parsing (phone numbers above all) is Python work; writing is mostly waiting on PostgreSQL,
    which releases the GIL, so the two overlap. The parser may run READ_AHEAD chunks ahead: far
    enough to be done early and leave the GIL to the writer, and memory stays bounded.
    """
    ready: queue.Queue = queue.Queue(maxsize=READ_AHEAD)
    done, stopped = object(), threading.Event()

    def put(item) -> bool:
        while not stopped.is_set():  # the consumer may stop early (an error): never block forever
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def parse() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return  # nobody will write the rest of the file
            put(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            put(exc)

    parser = threading.Thread(target=parse, name="import-parser", daemon=True)
    parser.start()
    try:
        while (item := ready.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stopped.set()
        parser.join()


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
