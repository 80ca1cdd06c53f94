"""One background thread that runs callables at due times: webhook deliveries, their retries, template reviews.

A single thread keeps webhooks in schedule order (ties in submission order), so delivery order only
changes when a knob asks for it. Delays use the monotonic clock, not the sandbox's adjustable clock.
"""

from __future__ import annotations

import heapq
import itertools
import sys
import threading
import time
import traceback
from typing import Callable


class Scheduler:
    def __init__(self, name: str = "sandbox-scheduler"):
        self._name = name
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._running = 0
        self._stopped = False
        self._thread: threading.Thread | None = None

    def call_later(self, delay: float, job: Callable[[], None]) -> None:
        with self._condition:
            if self._stopped:
                return
            heapq.heappush(self._heap, (time.monotonic() + max(delay, 0.0), next(self._sequence), job))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._condition.notify_all()

    def clear(self) -> None:
        """Forget every job not yet started."""
        with self._condition:
            self._heap.clear()
            self._condition.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until nothing is scheduled or running; False if still busy after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._heap or self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
            return True

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._heap.clear()
            self._condition.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopped:
                    if self._heap and self._heap[0][0] <= time.monotonic():
                        break
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._condition.wait(timeout)
                if self._stopped:
                    return
                _, _, job = heapq.heappop(self._heap)
                self._running += 1
            try:
                job()
            except Exception:  # a failing job must not stop the others
                traceback.print_exc(file=sys.stderr)
            finally:
                with self._condition:
                    self._running -= 1
                    self._condition.notify_all()
