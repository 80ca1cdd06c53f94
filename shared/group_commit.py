"""Group commit: the rows of concurrent callers in one process written by one statement and one commit.

A caller hands its row to `GroupCommit.submit` and blocks until the row is durable. Whoever finds
no write in progress leads: it takes every row waiting (its own included), writes them as one batch,
wakes their callers and hands the lead to the first caller that queued meanwhile. A lone caller (a
sync worker, a test) leads a batch of one, in its own thread, at the cost of a lock; under a
threaded server the rows that arrive while a batch is on its way to the disk go together in the
next one, so the database commits (and flushes its log) once per batch instead of once per row.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Sequence, TypeVar

Row = TypeVar("Row")
Result = TypeVar("Result")


@dataclass(eq=False)
class _Waiter(Generic[Row]):
    row: Row
    woken: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    result: Any = None
    error: BaseException | None = None


class GroupCommit(Generic[Row, Result]):
    def __init__(self, write: Callable[[Sequence[Row]], Sequence[Result]], *, max_batch: int = 100):
        """`write(rows)` makes the rows durable and returns one result per row, in order; what it raises
        reaches every caller of the batch."""
        self._write = write
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Waiter[Row]] = []
        self._writing = False
        self._writer_thread: int | None = None

    def submit(self, row: Row) -> Result:
        if self._writer_thread == threading.get_ident():  # the write itself submits (a task run inline): no wait
            return self._write([row])[0]
        waiter = _Waiter(row)
        with self._lock:
            self._queue.append(waiter)
            leads = waiter.leads = not self._writing
            self._writing = True
        if not leads:
            waiter.woken.wait()
        if waiter.leads:
            self._lead()
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch:]
        self._writer_thread = threading.get_ident()
        try:
            results = self._write([waiter.row for waiter in batch])
            for waiter, result in zip(batch, results, strict=True):
                waiter.result = result
        except BaseException as exc:  # every caller of the batch learns it
            for waiter in batch:
                waiter.error = exc
        finally:
            self._writer_thread = None
            with self._lock:
                successor = self._queue[0] if self._queue else None
                if successor is None:
                    self._writing = False
                else:
                    successor.leads = True
            for waiter in batch:
                waiter.leads = False
                waiter.woken.set()
            if successor is not None:
                successor.woken.set()
