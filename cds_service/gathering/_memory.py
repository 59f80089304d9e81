"""What the service has learnt about each FHIR server, for a while: the resource types it lacks,
the largest ``_count`` it takes, the searches it cannot sort.

One FHIR server answers every call of a client in the same way, so what one call learnt from a
rejected request (a 404 for a type, a 400 for ``_count`` or ``_sort``) is kept for ``ttl_s`` and
the next calls ask the adapted question straight away: one round of retries per server, not per
call. It is forgotten after the TTL, so a server that gains a type or a larger page size is
asked again. Keyed by the server's origin and base path (never a patient's URL); bounded in the
number of servers it holds, the least recently used going first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlsplit

from ._policy import parse_origin

Kind = Literal["unsupported_type", "page_size", "sort"]

DEFAULT_TTL_S = 3600.0
DEFAULT_MAX_SERVERS = 1024


def server_key(fhir_server: str) -> str:
    """``https://ehr.example.org:443/fhir/r4``: the origin and the base path, nothing else."""
    origin = parse_origin(fhir_server)
    if origin is None:
        return fhir_server
    try:
        path = urlsplit(fhir_server).path.rstrip("/")
    except ValueError:  # pragma: no cover - parse_origin has already split it
        path = ""
    return origin.key + path


@dataclass(frozen=True, slots=True)
class Learnt:
    """What is known of one server at one moment."""

    unsupported: frozenset[str] = frozenset()
    """Resource types it does not have."""
    page_sizes: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """Resource type → the largest ``_count`` it takes for a search of that type."""
    unsorted: frozenset[str] = frozenset()
    """Resource types whose searches it cannot sort (``_sort`` rejected)."""


NOTHING = Learnt()

# (kind, resource type) → (the learnt value, when it is forgotten)
_Facts = dict[tuple[Kind, str], tuple[int, float]]


class ServerMemory:
    """Adaptations learnt per FHIR server, each kept for ``ttl_s``; thread-safe.

    ``clock`` (monotonic seconds) is injectable for tests.
    """

    def __init__(
        self,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        max_servers: int = DEFAULT_MAX_SERVERS,
    ) -> None:
        if ttl_s <= 0 or max_servers < 1:
            raise ValueError("ttl_s must be positive and max_servers at least 1")
        self.ttl_s = ttl_s
        self._clock = clock
        self._max_servers = max_servers
        self._lock = threading.Lock()
        self._servers: OrderedDict[str, _Facts] = OrderedDict()

    def recall(self, fhir_server: str) -> Learnt:
        """What is known of ``fhir_server`` now (expired facts dropped)."""
        key = server_key(fhir_server)
        now = self._clock()
        with self._lock:
            facts = self._servers.get(key)
            if facts is None:
                return NOTHING
            for fact in [fact for fact, (_, until) in facts.items() if until <= now]:
                del facts[fact]
            if not facts:
                del self._servers[key]
                return NOTHING
            self._servers.move_to_end(key)
            snapshot = dict(facts)
        return Learnt(
            unsupported=frozenset(t for (k, t) in snapshot if k == "unsupported_type"),
            page_sizes=MappingProxyType(
                {t: value for (k, t), (value, _) in snapshot.items() if k == "page_size"}
            ),
            unsorted=frozenset(t for (k, t) in snapshot if k == "sort"),
        )

    def learn_unsupported(self, fhir_server: str, resource_type: str) -> None:
        self._learn(fhir_server, "unsupported_type", resource_type, 1)

    def learn_page_size(self, fhir_server: str, resource_type: str, page_size: int) -> None:
        """The server rejected a larger ``_count``; a smaller one learnt before is kept."""
        self._learn(fhir_server, "page_size", resource_type, page_size)

    def learn_unsorted(self, fhir_server: str, resource_type: str) -> None:
        self._learn(fhir_server, "sort", resource_type, 1)

    def forget(self) -> None:
        with self._lock:
            self._servers.clear()

    def _learn(self, fhir_server: str, kind: Kind, resource_type: str, value: int) -> None:
        key = server_key(fhir_server)
        now = self._clock()
        until = now + self.ttl_s
        with self._lock:
            facts = self._servers.get(key)
            if facts is None:
                facts = self._servers[key] = {}
                while len(self._servers) > self._max_servers:
                    self._servers.popitem(last=False)
            else:
                self._servers.move_to_end(key)
            known = facts.get((kind, resource_type))
            if kind == "page_size" and known is not None and known[1] > now:
                value = min(value, known[0])
            facts[(kind, resource_type)] = (value, until)
