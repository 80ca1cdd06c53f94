"""The MongoDB event log: append-only records of what happened (raw webhook payloads,
state transitions, audit entries), and the analytics rollup store.

All MongoDB access lives here and uses only operations that both a real MongoDB and
the embedded nx-27017 stand-in answer correctly (DESIGN §3): string ids (UUID text),
plain-field filters and sorts, no ObjectId references, no compound `$group` keys,
no `$not`, no Decimal128. tests/integration/test_events_conformance.py exercises
exactly these operations against the configured server.
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import threading
import uuid
from typing import Any

import structlog
from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.errors import BulkWriteError
from pymongo.database import Database

from shared.models.base import utcnow
from shared.settings import get_settings

EVENTS = "events"
_client: MongoClient | None = None
log = structlog.get_logger(__name__)


class EventStoreNotConfiguredError(RuntimeError):
    pass


def get_database() -> Database:
    global _client
    settings = get_settings()
    if _client is None:
        if not settings.mongodb_url:
            raise EventStoreNotConfiguredError(
                "MONGODB_URL is not set: run through `make run` (which starts the embedded stand-in) or set it"
            )
        _client = MongoClient(
            settings.mongodb_url,
            uuidRepresentation="standard",
            tz_aware=True,
            serverSelectionTimeoutMS=3000,
            connectTimeoutMS=3000,
            socketTimeoutMS=10000,
        )
    return _client[settings.mongodb_database]


def close_client() -> None:
    """Forget this process's client (after fork, or when settings change)."""
    global _client
    if _client is not None:
        _client.close()
    _client = None


def ping() -> None:
    get_database().command("ping")


def ensure_indexes() -> None:
    events = get_database()[EVENTS]
    events.create_index([("org_id", ASCENDING), ("subject_type", ASCENDING), ("subject_id", ASCENDING)])
    events.create_index([("org_id", ASCENDING), ("occurred_at", DESCENDING)])


def append_event(
    *,
    org_id: uuid.UUID | str | None,
    event: str,
    subject_type: str,
    subject_id: uuid.UUID | str,
    data: dict[str, Any] | None = None,
    actor: str | None = None,
    occurred_at: dt.datetime | None = None,
    event_id: str | None = None,
) -> str:
    """Append one event; with an `event_id` a repeated append is ignored (idempotent redelivery)."""
    document = _document(org_id=org_id, event=event, subject_type=subject_type, subject_id=subject_id, data=data,
                         actor=actor, occurred_at=occurred_at, event_id=event_id)
    get_database()[EVENTS].update_one({"_id": document["_id"]}, {"$setOnInsert": document}, upsert=True)
    return document["_id"]


DUPLICATE_KEY = 11000


def append_events(entries: list[dict[str, Any]]) -> int:
    """Append many events (each as `append_event`'s keywords) in one round trip; answer how many were new.

    Unordered insert: an entry whose `event_id` is stored already (a redelivered task) is skipped
    and the others still land.
    """
    if not entries:
        return 0
    documents = [_document(**entry) for entry in entries]
    try:
        return len(get_database()[EVENTS].insert_many(documents, ordered=False).inserted_ids)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        return exc.details.get("nInserted", len(documents) - len(errors))


def _document(
    *,
    org_id: uuid.UUID | str | None,
    event: str,
    subject_type: str,
    subject_id: uuid.UUID | str,
    data: dict[str, Any] | None = None,
    actor: str | None = None,
    occurred_at: dt.datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    return {
        "_id": event_id or str(uuid.uuid4()),
        "org_id": str(org_id) if org_id is not None else None,
        "event": event,
        "subject_type": subject_type,
        "subject_id": str(subject_id),
        "actor": actor,
        "data": data or {},
        "occurred_at": occurred_at or utcnow(),
    }


def events_for(
    *, org_id: uuid.UUID | str, subject_type: str, subject_id: uuid.UUID | str, limit: int = 100
) -> list[dict[str, Any]]:
    """A subject's timeline, oldest first (with what this process is still appending)."""
    _writer.wait_until_written()
    cursor = (
        get_database()[EVENTS]
        .find({"org_id": str(org_id), "subject_type": subject_type, "subject_id": str(subject_id)})
        .sort("occurred_at", ASCENDING)
        .limit(limit)
    )
    return list(cursor)


# -- appending without waiting ------------------------------------------------------------------
#
# A web request whose transaction committed need not wait for the event log: `append_events_soon`
# hands its lines to this process's writer thread, which appends whatever has gathered in one
# insert_many (the lines of requests that commit while a write is in flight go in the next one).
# Lines wait in memory only while a write is in flight; they are written at interpreter exit, and
# `events_for` first waits for this process's own, so a client reads what its request wrote.


class _Writer:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._pending: list[dict[str, Any]] = []
        self._writing = 0  # lines in the insert_many in flight
        self._pid: int | None = None

    def submit(self, entries: list[dict[str, Any]]) -> None:
        with self._condition:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="event-log-writer", daemon=True).start()
            self._pending.extend(entries)
            self._condition.notify_all()

    def wait_until_written(self, timeout: float = 10.0) -> None:
        with self._condition:
            self._condition.wait_for(lambda: not self._pending and not self._writing, timeout)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._pending)
                batch, self._pending = self._pending, []
                self._writing = len(batch)
            try:
                append_events(batch)
            except Exception:  # the changes stand; a lost line is logged loudly, as a synchronous append's is
                log.exception("events.append_failed", entries=len(batch), actions=sorted({e["event"] for e in batch}))
            finally:
                with self._condition:
                    self._writing = 0
                    self._condition.notify_all()

    def forget_after_fork(self) -> None:
        """A forked child starts with no lines and no writer (its parent writes its own)."""
        self._condition = threading.Condition()
        self._pending, self._writing, self._pid = [], 0, None


_writer = _Writer()
os.register_at_fork(after_in_child=_writer.forget_after_fork)
atexit.register(_writer.wait_until_written)


def append_events_soon(entries: list[dict[str, Any]]) -> None:
    """`append_events` by this process's writer thread: the caller does not wait for MongoDB."""
    if entries:
        _writer.submit(entries)
