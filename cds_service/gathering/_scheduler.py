"""The fetch threads, shared by every hook call, with a limit per FHIR server.

A fetch waiting for its server's turn holds no thread: it waits in that server's queue, and only
a fetch that may run is handed to the pool. So a server that answers slowly (or trickles bytes)
occupies at most ``per_host`` threads, each only until the fetch's own deadline, and the other
servers' fetches keep finding free threads. A queued fetch whose deadline passes before its turn
completes without running.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class _Job:
    host: str
    deadline: float
    task: Callable[[], Any]
    expired: Callable[[], Any]
    future: Future[Any] = field(default_factory=Future)


class FetchScheduler:
    """``submit`` runs a task on the pool, at most ``per_host`` at a time for one host."""

    def __init__(self, *, max_workers: int, per_host: int) -> None:
        if per_host < 1 or max_workers < 1:
            raise ValueError("max_workers and per_host must be at least 1")
        self.per_host = per_host
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="cds-fhir")
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}
        self._queued: dict[str, deque[_Job]] = {}

    def submit(
        self,
        host: str,
        deadline: float,
        task: Callable[[], Any],
        expired: Callable[[], Any],
    ) -> Future[Any]:
        """Run ``task`` when ``host`` has a free slot; ``expired()`` is the result of a task
        whose ``deadline`` (``time.monotonic()``) passed while it waited. Cancelling the future
        of a waiting task removes it from the queue's work."""
        job = _Job(host, deadline, task, expired)
        with self._lock:
            running = self._running.get(host, 0)
            if running >= self.per_host:
                self._queued.setdefault(host, deque()).append(job)
                return job.future
            self._running[host] = running + 1
        self._start(job)
        return job.future

    def running(self, host: str) -> int:
        with self._lock:
            return self._running.get(host, 0)

    def queued(self, host: str) -> int:
        with self._lock:
            return len(self._queued.get(host, ()))

    def _start(self, job: _Job) -> None:
        self._executor.submit(self._run, job)

    def _run(self, job: _Job) -> None:
        try:
            if job.future.set_running_or_notify_cancel():
                try:
                    if time.monotonic() >= job.deadline:
                        job.future.set_result(job.expired())
                    else:
                        job.future.set_result(job.task())
                except BaseException as exc:
                    job.future.set_exception(exc)
        finally:
            self._next(job.host)

    def _next(self, host: str) -> None:
        # The slot passes straight to the host's next waiting job, or is given back.
        with self._lock:
            queue = self._queued.get(host)
            while queue:
                job = queue.popleft()
                if not job.future.cancelled():
                    break
            else:
                job = None
            if queue is not None and not queue:
                del self._queued[host]
            if job is None:
                remaining = self._running[host] - 1
                if remaining:
                    self._running[host] = remaining
                else:
                    del self._running[host]
                return
        self._start(job)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
