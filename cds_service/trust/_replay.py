"""Remembering token ids (``jti``) for as long as their tokens could still be accepted."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from typing import Protocol


class ReplayCache(Protocol):
    def first_use(self, iss: str, jti: str, expires_at: float) -> bool:
        """Record ``(iss, jti)`` until ``expires_at`` (epoch s); False if already recorded."""
        ...


class MemoryReplayCache:
    """Per-process replay cache: with several workers a replay to another worker goes unseen."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._expiry: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, str, str]] = []

    def __len__(self) -> int:
        with self._lock:
            self._evict(self._clock())
            return len(self._expiry)

    def first_use(self, iss: str, jti: str, expires_at: float) -> bool:
        with self._lock:
            now = self._clock()
            self._evict(now)
            key = (iss, jti)
            if key in self._expiry:
                return False
            if expires_at <= now:
                # Nothing to remember: the token cannot be presented again successfully.
                return True
            self._expiry[key] = expires_at
            heapq.heappush(self._heap, (expires_at, iss, jti))
            return True

    def _evict(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            expires_at, iss, jti = heapq.heappop(self._heap)
            if self._expiry.get((iss, jti)) == expires_at:
                del self._expiry[(iss, jti)]
