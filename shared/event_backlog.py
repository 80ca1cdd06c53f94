"""The event log's write path when the event store may be down: no line is lost, and none stalls a pool.

`write(entries)` appends to the event store (shared/events.py); when that fails (or the store failed a
moment ago, see events._breaker) the entries go to the `event_backlog` table in a short transaction of
their own: the business change they describe has committed already. `replay()`, run by the maintenance
sweep, moves the backlog into the event store oldest first and deletes rows only once written. Each entry
carries its event id from the first attempt on, so a batch half-written before a failure, or replayed
twice, is stored once. When PostgreSQL refuses the backlog too, the lines are lost: logged as a gap.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import structlog
from sqlalchemy import delete, insert, select

from shared import events
from shared.db import unit_of_work
from shared.models import EventBacklogEntry
from shared.models.base import utcnow

log = structlog.get_logger(__name__)

REPLAY_BATCH = 500
REPLAY_MAX_BATCHES = 20  # a sweep run replays at most this many batches; the next run takes the rest


def write(entries: list[dict[str, Any]]) -> None:
    """Append `entries` (events.append_event's keywords) to the event log, or keep them in the backlog."""
    if not entries:
        return
    fixed = [_fixed(entry) for entry in entries]
    try:
        events.append_events(fixed)
    except Exception as exc:  # whatever the store's problem, the lines wait in PostgreSQL
        spill(fixed, reason=repr(exc.__cause__ or exc))


def _fixed(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry with the id and time it keeps on every attempt (a replay must not restamp it)."""
    return {**entry, "event_id": entry.get("event_id") or str(uuid.uuid4()),
            "occurred_at": entry.get("occurred_at") or utcnow()}


def spill(entries: list[dict[str, Any]], *, reason: str) -> None:
    """Keep `entries` in the backlog, in a transaction of their own; if PostgreSQL refuses, log the gap."""
    entries = [_fixed(entry) for entry in entries]
    try:
        with unit_of_work() as session:
            session.execute(insert(EventBacklogEntry), [_row(entry) for entry in entries])
    except Exception:
        log.exception("event_log.gap", entries=len(entries), actions=sorted({e["event"] for e in entries}),
                      event_ids=[e["event_id"] for e in entries][:20], store_error=reason)
        return
    log.warning("event_log.spilled", entries=len(entries), store_error=reason)


def _row(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": entry["event_id"],
        "org_id": str(entry["org_id"]) if entry.get("org_id") is not None else None,
        "event": entry["event"],
        "subject_type": entry["subject_type"],
        "subject_id": str(entry["subject_id"]),
        "actor": entry.get("actor"),
        # JSONB holds JSON: a stray datetime or UUID in a line's data comes back as its text.
        "data": json.loads(json.dumps(entry.get("data") or {}, default=str)),
        "occurred_at": entry["occurred_at"],
    }


def replay(*, batch_size: int = REPLAY_BATCH, max_batches: int = REPLAY_MAX_BATCHES) -> int:
    """Move the backlog into the event store, oldest first; answer how many lines moved.

    Rows are taken FOR UPDATE SKIP LOCKED, so an overlapping run takes other rows (or none), and deleted in
    the transaction that read them, after the store took them. A store still down ends the run quietly.
    """
    moved = 0
    for _ in range(max_batches):
        try:
            taken = _replay_batch(batch_size)
        except events.EventStoreUnavailableError as exc:
            log.info("event_log.replay_deferred", replayed=moved, store_error=repr(exc.__cause__ or exc))
            break
        moved += taken
        if taken < batch_size:
            break
    if moved:
        log.info("event_log.replayed", entries=moved)
    return moved


def _replay_batch(batch_size: int) -> int:
    with unit_of_work() as session:
        rows = session.execute(
            select(EventBacklogEntry)
            .order_by(EventBacklogEntry.created_at, EventBacklogEntry.occurred_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        ).scalars().all()
        if rows:
            events.append_events([_entry(row) for row in rows])
            session.execute(delete(EventBacklogEntry).where(EventBacklogEntry.id.in_([row.id for row in rows])))
        return len(rows)


def _entry(row: EventBacklogEntry) -> dict[str, Any]:
    return {"event_id": row.event_id, "org_id": row.org_id, "event": row.event, "subject_type": row.subject_type,
            "subject_id": row.subject_id, "actor": row.actor, "data": row.data, "occurred_at": row.occurred_at}

