"""The shared fetch threads: a per-server limit, and waiting fetches hold no thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import wait

import pytest

from cds_service.gathering._scheduler import FetchScheduler

FAR = 3600.0  # a deadline no test reaches


@pytest.fixture
def scheduler() -> Iterator[FetchScheduler]:
    pool = FetchScheduler(max_workers=4, per_host=2)
    yield pool
    pool.shutdown()


def _blocked(release: threading.Event, started: list[str], name: str) -> Callable[[], str]:
    def task() -> str:
        started.append(name)
        release.wait(10)
        return name

    return task


def test_one_host_gets_no_more_than_its_share_and_another_host_still_runs(
    scheduler: FetchScheduler,
) -> None:
    release = threading.Event()
    started: list[str] = []
    deadline = time.monotonic() + FAR
    slow = [
        scheduler.submit("slow", deadline, _blocked(release, started, f"s{i}"), lambda: "expired")
        for i in range(5)
    ]
    try:
        # Two run, three wait in the slow host's queue without a thread.
        assert scheduler.running("slow") == 2
        assert scheduler.queued("slow") == 3
        # The pool has 4 threads: two are free, so another server's fetch runs at once.
        other = scheduler.submit("other", deadline, lambda: "done", lambda: "expired")
        assert other.result(timeout=5) == "done"
        assert scheduler.queued("slow") == 3
    finally:
        release.set()
    done, _ = wait(slow, timeout=10)
    assert {future.result() for future in done} == {f"s{i}" for i in range(5)}
    assert sorted(started) == [f"s{i}" for i in range(5)]
    assert scheduler.running("slow") == 0 and scheduler.queued("slow") == 0


def test_a_waiting_fetch_whose_deadline_passed_does_not_run(scheduler: FetchScheduler) -> None:
    release = threading.Event()
    started: list[str] = []
    far = time.monotonic() + FAR
    blockers = [
        scheduler.submit("host", far, _blocked(release, started, f"b{i}"), lambda: "expired")
        for i in range(2)
    ]
    ran: list[str] = []
    late = scheduler.submit("host", time.monotonic(), lambda: ran.append("late"), lambda: "expired")
    release.set()
    assert late.result(timeout=5) == "expired"
    assert ran == []
    wait(blockers, timeout=5)


def test_a_cancelled_waiting_fetch_never_runs(scheduler: FetchScheduler) -> None:
    release = threading.Event()
    started: list[str] = []
    far = time.monotonic() + FAR
    blockers = [
        scheduler.submit("host", far, _blocked(release, started, f"b{i}"), lambda: "expired")
        for i in range(2)
    ]
    ran: list[str] = []
    queued = scheduler.submit("host", far, lambda: ran.append("queued"), lambda: "expired")
    assert queued.cancel()
    release.set()
    wait(blockers, timeout=5)
    follow_up = scheduler.submit("host", far, lambda: "after", lambda: "expired")
    assert follow_up.result(timeout=5) == "after"
    assert ran == []


def test_a_failing_task_reports_its_exception_and_frees_its_slot(
    scheduler: FetchScheduler,
) -> None:
    def boom() -> None:
        raise RuntimeError("bug")

    far = time.monotonic() + FAR
    failed = scheduler.submit("host", far, boom, lambda: "expired")
    with pytest.raises(RuntimeError, match="bug"):
        failed.result(timeout=5)
    assert scheduler.submit("host", far, lambda: "ok", lambda: "expired").result(timeout=5) == "ok"
    assert scheduler.running("host") == 0
