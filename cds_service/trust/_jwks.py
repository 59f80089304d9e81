"""Fetching allowlisted ``jku`` key sets: cached, refreshed on an unknown kid, rate-limited."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from .._logging import get_logger
from ._keys import KeyRejected, KeySet, PublicKey

_log = get_logger(__name__)

DEFAULT_TTL_S = 3600.0
DEFAULT_MIN_REFETCH_INTERVAL_S = 30.0


class JwksFetchError(Exception):
    """A key set could not be fetched or was not a JWK Set."""


class JwksFetcher(Protocol):
    def fetch(self, url: str) -> Mapping[str, Any]:
        """The JSON document at ``url``; raises ``JwksFetchError`` (or any error) on failure."""
        ...


class RequestsJwksFetcher:
    """GETs a key set with a short timeout; redirects are refused so the allowlist holds."""

    def __init__(self, timeout_s: float = 2.0, max_bytes: int = 512 * 1024) -> None:
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes

    def fetch(self, url: str) -> Mapping[str, Any]:
        try:
            with requests.get(
                url,
                timeout=self._timeout_s,
                allow_redirects=False,
                stream=True,
                headers={"Accept": "application/jwk-set+json, application/json"},
            ) as response:
                if response.status_code != 200:
                    raise JwksFetchError(f"HTTP {response.status_code}")
                body = self._read_capped(response)
        except requests.RequestException as exc:
            raise JwksFetchError(type(exc).__name__) from exc
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise JwksFetchError("not JSON") from exc
        if not isinstance(document, dict):
            raise JwksFetchError("not a JSON object")
        return document

    def _read_capped(self, response: requests.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=16 * 1024):
            size += len(chunk)
            if size > self._max_bytes:
                raise JwksFetchError(f"larger than {self._max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class _Entry:
    keys: KeySet
    fetched_at: float


@dataclass(frozen=True, slots=True)
class Lookup:
    key: PublicKey | None
    unavailable: bool = False


class RemoteKeySets:
    """Key sets by URL. Holds a per-URL lock while fetching so concurrent misses fetch once."""

    def __init__(
        self,
        fetcher: JwksFetcher,
        clock: Callable[[], float],
        ttl_s: float = DEFAULT_TTL_S,
        min_refetch_interval_s: float = DEFAULT_MIN_REFETCH_INTERVAL_S,
    ) -> None:
        self._fetcher = fetcher
        self._clock = clock
        self._ttl_s = ttl_s
        self._min_interval_s = min_refetch_interval_s
        self._entries: dict[str, _Entry] = {}
        self._last_attempt: dict[str, float] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def find(self, url: str, kid: str, algorithm: str) -> Lookup:
        with self._lock_for(url):
            entry = self._entries.get(url)
            fetched_now = False
            if entry is None or self._clock() - entry.fetched_at >= self._ttl_s:
                fetched_now = self._refresh(url)
                entry = self._entries.get(url)
            key = entry.keys.find(kid, algorithm) if entry else None
            if key is None and not fetched_now:
                # Unknown kid: the client may have rotated its keys since we last looked.
                self._refresh(url)
                entry = self._entries.get(url)
                key = entry.keys.find(kid, algorithm) if entry else None
            return Lookup(key=key, unavailable=entry is None)

    def _lock_for(self, url: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(url, threading.Lock())

    def _refresh(self, url: str) -> bool:
        """Fetch unless fetched within the minimum interval; True if a fetch succeeded."""
        now = self._clock()
        last = self._last_attempt.get(url)
        if last is not None and now - last < self._min_interval_s:
            return False
        self._last_attempt[url] = now
        try:
            keys = KeySet.lenient(self._fetcher.fetch(url))
        except (JwksFetchError, KeyRejected) as exc:
            _log.warning("auth.jwks_fetch_failed", jku=url, error=str(exc))
            return False
        except Exception as exc:  # an injected fetcher may raise anything; never a 500
            _log.warning("auth.jwks_fetch_failed", jku=url, error=type(exc).__name__)
            return False
        # A failed refresh keeps the previous keys: the EHR's outage should not become ours.
        self._entries[url] = _Entry(keys=keys, fetched_at=now)
        _log.info("auth.jwks_fetched", jku=url, keys=len(keys.keys))
        return True
