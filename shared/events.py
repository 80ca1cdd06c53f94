"""The MongoDB event log: append-only records of what happened (raw webhook payloads,
state transitions, audit entries), and the analytics rollup store.

All MongoDB access lives here and uses only operations that both a real MongoDB and
the embedded nx-27017 stand-in answer correctly (DESIGN §3): string ids (UUID text),
plain-field filters and sorts, no ObjectId references, no compound `$group` keys,
no `$not`, no Decimal128. tests/integration/test_events_conformance.py exercises
exactly these operations against the configured server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from typing import Any, Iterator

from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.errors import BulkWriteError, ConnectionFailure
from pymongo.database import Database

from shared.errors import DomainError
from shared.models.base import utcnow
from shared.settings import get_settings

EVENTS = "events"
_client: MongoClient | None = None
_unavailable_until = 0.0  # time.monotonic() before which writes skip the store (see _breaker)


class EventStoreNotConfiguredError(RuntimeError):
    pass


class EventStoreUnavailableError(DomainError):
    """The event store did not answer, or failed less than EVENT_STORE_RETRY_SECONDS ago. A read that meets it
    (a timeline) answers 503: the history is there, only not reachable now."""

    code = "event_store_unavailable"
    http_status = 503


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
    global _client, _unavailable_until
    if _client is not None:
        _client.close()
    _client = None
    _unavailable_until = 0.0


@contextlib.contextmanager
def _breaker() -> Iterator[None]:
    """A write while the store is down waits out pymongo's server selection (seconds) and stalls the pool that
    wrote it; after one such failure this process skips the store for EVENT_STORE_RETRY_SECONDS instead."""
    global _unavailable_until
    if time.monotonic() < _unavailable_until:
        raise EventStoreUnavailableError("The event log failed a moment ago; it is tried again shortly")
    try:
        yield
    except ConnectionFailure as exc:
        _unavailable_until = time.monotonic() + get_settings().event_store_retry_seconds
        raise EventStoreUnavailableError("The event log is unreachable right now; try again shortly") from exc


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
    with _breaker():
        get_database()[EVENTS].update_one({"_id": document["_id"]}, {"$setOnInsert": document}, upsert=True)
    return document["_id"]


DUPLICATE_KEY = 11000


def append_events(entries: list[dict[str, Any]]) -> int:
    """Append many events (each as `append_event`'s keywords) in one round trip; answer how many were new.

    Unordered insert: an entry whose `event_id` is stored already (a redelivered task) is skipped
    and the others still land. Raises EventStoreUnavailableError when the store is down (or was a moment ago).
    """
    if not entries:
        return 0
    documents = [_document(**entry) for entry in entries]
    with _breaker():
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
    """A subject's timeline, oldest first."""
    with _breaker():
        cursor = (
            get_database()[EVENTS]
            .find({"org_id": str(org_id), "subject_type": subject_type, "subject_id": str(subject_id)})
            .sort("occurred_at", ASCENDING)
            .limit(limit)
        )
        return list(cursor)
