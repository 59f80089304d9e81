"""The background writer behind record_cards: batching, flush, back-pressure, failures."""

from __future__ import annotations

import threading

import pytest

from cds_service.store import _writer
from cds_service.store._writer import BackgroundWriter


def test_flush_waits_until_everything_submitted_is_written() -> None:
    written: list[int] = []
    gate = threading.Event()

    def write(batch: list[int]) -> None:
        assert gate.wait(30)
        written.extend(batch)

    writer: BackgroundWriter[int] = BackgroundWriter(write, name="test-writer")
    try:
        assert writer.submit([1, 2])
        assert writer.submit([3])
        assert writer.busy
        assert not writer.flush(timeout_s=0), "nothing can be written while the gate is shut"
        gate.set()
        assert writer.flush(timeout_s=30)
        assert written == [1, 2, 3]
        assert not writer.busy
    finally:
        gate.set()
        writer.close()


def test_batches_are_bounded() -> None:
    batches: list[list[int]] = []
    gate = threading.Event()

    def write(batch: list[int]) -> None:
        assert gate.wait(30)
        batches.append(batch)

    writer: BackgroundWriter[int] = BackgroundWriter(write, name="test-writer", max_batch=3)
    try:
        writer.submit(list(range(10)))
        gate.set()
        assert writer.flush(timeout_s=30)
    finally:
        gate.set()
        writer.close()
    assert [n for batch in batches for n in batch] == list(range(10))
    assert max(len(batch) for batch in batches) <= 3


def test_a_full_queue_drops_instead_of_blocking() -> None:
    gate = threading.Event()

    def write(batch: list[int]) -> None:
        gate.wait(30)

    writer: BackgroundWriter[int] = BackgroundWriter(write, name="test-writer", max_pending=2)
    try:
        assert not writer.submit([1, 2, 3])
        assert writer.submit([1, 2])
    finally:
        gate.set()
        writer.close()


def test_close_drains_the_queue_and_later_submits_are_refused() -> None:
    written: list[int] = []
    writer: BackgroundWriter[int] = BackgroundWriter(written.extend, name="test-writer")
    writer.submit([1, 2, 3])
    writer.close()
    assert written == [1, 2, 3]
    assert not writer.alive
    assert not writer.submit([4])
    assert writer.flush(timeout_s=1)


def test_a_failed_write_is_retried_and_a_hopeless_one_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_writer, "_RETRY_DELAYS_S", (0.0, 0.0))
    attempts: list[list[int]] = []

    def flaky(batch: list[int]) -> None:
        attempts.append(batch)
        if batch == [1] and len(attempts) == 1:
            raise OSError("database went away")
        if batch == [2]:
            raise OSError("still down")

    writer: BackgroundWriter[int] = BackgroundWriter(flaky, name="test-writer")
    try:
        writer.submit([1])
        assert writer.flush(timeout_s=30)
        assert attempts == [[1], [1]]
        writer.submit([2])
        assert writer.flush(timeout_s=30)
        assert attempts[2:] == [[2], [2], [2]], "tried once, then each retry delay, then dropped"
        assert writer.alive, "the thread survives"
    finally:
        writer.close()


def test_maintenance_runs_on_the_writer_thread() -> None:
    ran = threading.Event()
    threads: list[str] = []

    def maintain() -> None:
        threads.append(threading.current_thread().name)
        ran.set()

    writer: BackgroundWriter[int] = BackgroundWriter(
        lambda batch: None, name="test-writer", maintenance=maintain, maintenance_every_s=0.001
    )
    try:
        assert ran.wait(30)
    finally:
        writer.close()
    assert threads[0] == "test-writer"
