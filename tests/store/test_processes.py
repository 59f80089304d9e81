"""Two worker processes writing to one database at once: no "database is locked", no lost row."""

from __future__ import annotations

import multiprocessing
import queue

from cds_service.store import Store

from .workers import write_concurrently

PER_WORKER = 120


def test_two_processes_write_cards_and_feedback_concurrently(database_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    errors = context.Queue()
    processes = [
        context.Process(
            target=write_concurrently, args=(database_url, worker, PER_WORKER, barrier, errors)
        )
        for worker in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(300)
    problems = []
    while True:
        try:
            problems.append(errors.get(timeout=0.5))
        except queue.Empty:
            break
    assert problems == []
    assert [p.exitcode for p in processes] == [0, 0]

    with Store.open(database_url) as store:
        report = store.report()
        assert report["topics"] == {
            "hypomagnesemia": {
                "shown": 2 * PER_WORKER,
                "silent": 0,
                "accepted": PER_WORKER,
                "overridden": PER_WORKER,
                "override_reasons": {"not-relevant": PER_WORKER},
            }
        }
        for worker in range(2):
            for number in range(PER_WORKER):
                assert not store.first_use("iss", f"{worker}-{number}", 4_000_000_000)
