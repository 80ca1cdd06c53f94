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

A parser thread reads and stages the rows (contact_import_rows) while the job's thread writes
the chunks before them (contact_import_writer).
"""

from __future__ import annotations

import codecs
import csv
import io
import queue
import sys
import threading
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db import get_owned
from shared.errors import InvalidInputError, NotFoundError
from shared.models import Contact, ContactImport, Job, Organization
from shared.services import attributes
from shared.services.contact_import_rows import PROFILE_FIELDS, RowError, RowReader, StagedChunk
from shared.services.contact_import_writer import ChunkWriter, Counts
from shared.storage import get_storage

CHUNK = 5000
READ_AHEAD = 8  # chunks parsed and waiting for the writer: a few MB
# While the parser thread runs, the writer waits up to this long for the GIL each time PostgreSQL
# answers a statement (CPython's default is 5 ms): at the default, PostgreSQL sat idle for 15-20% of
# the import, waiting for its next statement.
SWITCH_INTERVAL = 0.0005
SAMPLE_BYTES = 64 * 1024
PREVIEW_ROWS = 20
PLAIN_FIELDS = {"phone", *PROFILE_FIELDS, "tags", "marketing_opt_in"}
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
    if b"\x00" in sample:  # no text file holds a NUL byte: an image, a spreadsheet, an archive
        storage.delete(key)
        raise ImportFileError("The file is not a CSV text file (it holds binary data); export it as CSV")
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
    rows = rows_of(record)
    next(rows, None)
    return [row for _, row in zip(range(limit), rows)]


def rows_of(record: ContactImport) -> Iterator[list[str]]:
    raw = get_storage().open(record.file_key)
    text = io.TextIOWrapper(raw, encoding=record.encoding, errors="replace", newline="")
    return csv.reader(text, delimiter=record.delimiter)


# -- mapping ------------------------------------------------------------------------------


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


# -- preview and run ----------------------------------------------------------------------


def preview(session: Session, *, org: Organization, record: ContactImport, mapping: Mapping) -> list[dict[str, Any]]:
    """What the first rows would do, without writing anything."""
    reader = RowReader(session, org, record, mapping)
    outcomes, parsed = [], []
    rows = rows_of(record)
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
    enough to be done early and leave the GIL to the writer, and memory stays bounded. Until it is
    done, a short switch interval hands the GIL back to the writer as soon as a statement returns.
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
    interval = sys.getswitchinterval()  # process-wide: restored when the import ends
    sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
    parser.start()
    try:
        while (item := ready.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stopped.set()
        parser.join()
        sys.setswitchinterval(interval)


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
