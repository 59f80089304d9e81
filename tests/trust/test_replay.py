"""MemoryReplayCache: one use per (iss, jti) while the token lives, then forgotten."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from cds_service.trust import MemoryReplayCache, ReplayCache

from .support import NOW, Clock


def test_second_use_is_refused_until_expiry() -> None:
    clock = Clock()
    cache = MemoryReplayCache(clock)
    assert cache.first_use("iss-a", "jti-1", NOW + 360)
    assert not cache.first_use("iss-a", "jti-1", NOW + 360)
    assert cache.first_use("iss-b", "jti-1", NOW + 360), "jti is scoped to its issuer"
    clock.advance(359)
    assert not cache.first_use("iss-a", "jti-1", NOW + 360)
    clock.advance(1)
    assert cache.first_use("iss-a", "jti-1", NOW + 720)


def test_expired_entries_are_evicted() -> None:
    clock = Clock()
    cache = MemoryReplayCache(clock)
    for number in range(100):
        cache.first_use("iss", f"jti-{number}", NOW + 10 + number)
    assert len(cache) == 100
    clock.advance(60)
    assert len(cache) == 49  # expiries NOW+10 .. NOW+60 are gone
    clock.advance(1000)
    assert len(cache) == 0


def test_concurrent_uses_of_one_jti_admit_exactly_one() -> None:
    cache = MemoryReplayCache()
    start = threading.Barrier(8)
    results: list[bool] = []
    lock = threading.Lock()

    def attempt() -> None:
        start.wait()
        outcome = cache.first_use("iss", "same-jti", 4_000_000_000)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_memory_cache_satisfies_the_protocol() -> None:
    cache: ReplayCache = MemoryReplayCache()
    assert cache.first_use("iss", "jti", 4_000_000_000)


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 50), st.integers(1, 30))))
def test_matches_a_simple_model(steps: list[tuple[str, int, int]]) -> None:
    """Each step: (jti, seconds to advance, token life). Compared with a plain dict."""
    clock = Clock()
    cache = MemoryReplayCache(clock)
    model: dict[str, float] = {}
    for jti, advance, life in steps:
        clock.advance(advance)
        expected = model.get(jti, float("-inf")) <= clock.now
        assert cache.first_use("iss", jti, clock.now + life) is expected
        if expected:
            model[jti] = clock.now + life
