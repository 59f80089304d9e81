"""A queue and one thread that write card audit rows in batches, off the hook's response path."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from .._logging import get_logger

T = TypeVar("T")

_log = get_logger(__name__)
_RETRY_DELAYS_S = (0.05, 0.5, 2.0)


class BackgroundWriter(Generic[T]):
    """Batches whatever is submitted and hands each batch to ``write`` on its own thread.

    ``flush`` waits until everything submitted so far is written (or given up on), ``close``
    drains and stops. A full queue drops new items rather than slowing down the caller.
    """

    def __init__(
        self,
        write: Callable[[list[T]], None],
        *,
        name: str,
        max_batch: int = 500,
        max_pending: int = 100_000,
        maintenance: Callable[[], None] | None = None,
        maintenance_every_s: float = 24 * 3600.0,
        linger_s: float = 0.05,
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._maintenance = maintenance
        self._maintenance_every_s = maintenance_every_s
        # Group commit: wait this long for more items before writing, so a busy service commits
        # (and fsyncs) a few times a second instead of once per request. ``flush`` cuts it short.
        self._linger_s = linger_s
        self._flushing = 0
        self._next_maintenance = time.monotonic() + maintenance_every_s
        self._cond = threading.Condition()
        self._pending: deque[T] = deque()
        self._in_flight = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, items: Sequence[T]) -> bool:
        """Queue ``items``; False if they were dropped (closed, or the queue is full)."""
        with self._cond:
            if self._closed or len(self._pending) + len(items) > self._max_pending:
                return False
            self._pending.extend(items)
            self._cond.notify_all()
            return True

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every item submitted before this call is written; False on timeout."""
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(self._idle, timeout_s)
            finally:
                self._flushing -= 1

    @property
    def busy(self) -> bool:
        with self._cond:
            return not self._idle()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self, timeout_s: float | None = None) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _idle(self) -> bool:
        return not self._pending and self._in_flight == 0

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if batch:
                self._write_with_retries(batch)
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()
            self._maybe_maintain()

    def _next_batch(self) -> list[T] | None:
        """Up to ``max_batch`` items, [] when maintenance is due, None once closed and drained."""
        with self._cond:
            while not self._pending and not self._closed:
                wait_s = self._next_maintenance - time.monotonic()
                if self._maintenance is not None and wait_s <= 0:
                    return []
                self._cond.wait(wait_s if self._maintenance is not None else None)
            if not self._pending:
                return None
            linger_until = time.monotonic() + self._linger_s
            while (
                len(self._pending) < self._max_batch
                and not self._closed
                and not self._flushing
                and (remaining := linger_until - time.monotonic()) > 0
            ):
                self._cond.wait(remaining)
            count = min(len(self._pending), self._max_batch)
            batch = [self._pending.popleft() for _ in range(count)]
            self._in_flight = len(batch)
            return batch

    def _write_with_retries(self, batch: list[T]) -> None:
        for attempt, delay_s in enumerate((*_RETRY_DELAYS_S, None)):
            try:
                self._write(batch)
                return
            except Exception as exc:  # the thread must survive a database outage
                # The type only: driver messages can quote the row values.
                if delay_s is None:
                    _log.error("store.batch_dropped", rows=len(batch), error=type(exc).__name__)
                    return
                _log.warning(
                    "store.batch_retry",
                    rows=len(batch),
                    attempt=attempt + 1,
                    error=type(exc).__name__,
                )
                time.sleep(delay_s)

    def _maybe_maintain(self) -> None:
        if self._maintenance is None or time.monotonic() < self._next_maintenance:
            return
        self._next_maintenance = time.monotonic() + self._maintenance_every_s
        try:
            self._maintenance()
        except Exception as exc:  # maintenance is best effort; the next run tries again
            _log.warning("store.maintenance_failed", error=type(exc).__name__)
