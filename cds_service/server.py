"""The HTTP server: uvicorn (httptools, uvloop), with limits on slow and huge clients.

Uvicorn by itself reads request headers of any size and waits for a request's head and body for
as long as the client likes. ``LimitedHttpToolsProtocol`` is its httptools protocol with:

- a **size cap on the request head** (request line and headers, ``CDS_MAX_HEADER_KB``): the
  parser is fed at most that much before the head is complete, so a huge header is never
  buffered; the answer is ``431`` and the connection is closed;
- a **head deadline** (``CDS_HEADER_TIMEOUT_S``) from the moment the server waits for a request
  (connection opened, or the previous response sent) until its head is complete, and a **body
  deadline** (``CDS_BODY_TIMEOUT_S``) from the end of the head to the end of the body: a client
  that misses one gets ``408`` (when it had started sending) and is disconnected;
- a **cap on open connections per worker** (``CDS_MAX_CONNECTIONS``). At the cap, a new
  connection takes the place of the one that has waited longest on its client (for a request
  head or body, or idle between requests); only when every connection is busy with a request
  the server is answering is the new one refused with ``503``. So connections held open by a
  slow client make room for new ones, and a legitimate client, which sends its request at once,
  keeps being answered: to push it out before its head arrives, all the other waiting
  connections would have to be replaced first.

A client that goes away in the middle of its body reaches the application as a disconnect; the
application logs it as one ``request.client_aborted`` line (see ``app``).

Each limit is counted in ``cds_connections_dropped_total{reason}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import resource
import time
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from . import metrics
from ._logging import get_logger
from .settings import Settings

_log = get_logger(__name__)

# A connection we closed with a response the client does not read is aborted after this.
_CLOSE_GRACE_S = 2.0
_DEFAULT_MAX_CONNECTIONS = 1000


def _canned(status: str, body: str, *extra: str) -> bytes:
    lines = [
        f"HTTP/1.1 {status}",
        "content-type: text/plain; charset=utf-8",
        f"content-length: {len(body)}",
        "connection: close",
        *extra,
        "",
        body,
    ]
    return "\r\n".join(lines).encode("ascii")


_TOO_LARGE = _canned("431 Request Header Fields Too Large", "request header fields too large")
_TIMEOUT = _canned("408 Request Timeout", "request timeout")
_BUSY = _canned("503 Service Unavailable", "too many connections", "retry-after: 1")


def default_max_connections() -> int:
    """Half the process's open-file limit (the rest is for the database, FHIR fetches, files),
    at most 1,000."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return _DEFAULT_MAX_CONNECTIONS
    return max(16, min(_DEFAULT_MAX_CONNECTIONS, soft // 2))


@dataclass(frozen=True, slots=True)
class ServerLimits:
    max_header_bytes: int
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerLimits:
        return cls(
            max_header_bytes=settings.max_header_kb * 1024,
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            max_connections=settings.max_connections or default_max_connections(),
        )


@functools.cache
def process_limits() -> ServerLimits:
    """The limits of this worker process, from its environment (read once)."""
    limits = ServerLimits.from_settings(Settings())
    _log.info(
        "server.limits",
        max_header_bytes=limits.max_header_bytes,
        header_timeout_s=limits.header_timeout_s,
        body_timeout_s=limits.body_timeout_s,
        max_connections=limits.max_connections,
    )
    return limits


# Connections waiting on their client (for a head, a body, or idle), oldest first. One event
# loop per worker process, so a plain dict (insertion-ordered) needs no lock.
_WAITING: dict[LimitedHttpToolsProtocol, float] = {}


def _dropped(reason: str) -> None:
    # Counted, and logged only at DEBUG: a flood of bad connections must not flood the log too.
    metrics.CONNECTIONS_DROPPED.labels(reason).inc()
    _log.debug("http.connection_dropped", reason=reason)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """Uvicorn's httptools protocol with head/body size and time limits and a connection cap."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = process_limits()
        self._timer: asyncio.TimerHandle | None = None
        self._reading_head = True
        self._head_bytes = 0

    # --- connection ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._limits.max_connections and not _evict_one(self):
            _dropped("over-capacity")
            self._close_with(_BUSY)
            return
        self._wait_for_client(self._limits.header_timeout_s, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    # --- the request head ---------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        view = memoryview(data)
        limit = self._limits.max_header_bytes
        # While a head is being read, feed the parser no more than the cap allows, so it never
        # buffers more of an oversized head than that.
        while self._reading_head and view and not self.transport.is_closing():
            room = limit - self._head_bytes
            if room <= 0:
                self._head_too_large()
                return
            piece, view = view[:room], view[room:]
            self._head_bytes += len(piece)
            super().data_received(piece)  # type: ignore[arg-type]
        if view and not self.transport.is_closing():
            super().data_received(view)  # type: ignore[arg-type]

    def on_headers_complete(self) -> None:
        self._reading_head = False
        super().on_headers_complete()
        if self.pipeline:
            # Queued behind a request still being answered (reading is paused meanwhile): its
            # body deadline starts when its turn comes (``on_response_complete``).
            self._stop_waiting()
        elif not self.transport.is_closing():
            self._wait_for_client(self._limits.body_timeout_s, self._body_timed_out)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True
        self._head_bytes = 0
        self._stop_waiting()
        if self.cycle is not None and self.cycle.response_complete:
            # Answered before the body ended (413, 415): the next head is awaited now.
            self._wait_for_client(self._limits.header_timeout_s, self._head_timed_out)

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if not self._reading_head:
            # A queued request has started and its body is still coming.
            if pipelined:
                self._wait_for_client(self._limits.body_timeout_s, self._body_timed_out)
        elif not pipelined:
            self._wait_for_client(self._limits.header_timeout_s, self._head_timed_out)

    # --- limits -------------------------------------------------------------------------------

    def _head_too_large(self) -> None:
        _dropped("header-too-large")
        busy = self.cycle is not None and not self.cycle.response_complete
        self._close_with(None if busy else _TOO_LARGE)

    def _head_timed_out(self) -> None:
        _dropped("header-timeout")
        self._close_with(_TIMEOUT if self._head_bytes else None)

    def _body_timed_out(self) -> None:
        _dropped("body-timeout")
        started = self.cycle is not None and self.cycle.response_started
        self._close_with(None if started else _TIMEOUT)

    def evict(self) -> None:
        _dropped("evicted")
        self._close_with(None)

    def _close_with(self, response: bytes | None) -> None:
        self._stop_waiting()
        transport = self.transport
        if transport.is_closing():
            return
        if response is not None:
            transport.write(response)
        transport.close()
        # A client that does not read would keep the connection open while the reply waits in
        # the write buffer: give up on it after a grace period.
        self.loop.call_later(_CLOSE_GRACE_S, _abort, transport)

    # --- waiting on the client ----------------------------------------------------------------

    def _wait_for_client(self, timeout_s: float, expired: Any) -> None:
        self._stop_waiting()
        self._timer = self.loop.call_later(timeout_s, expired)
        _WAITING[self] = time.monotonic()

    def _stop_waiting(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        _WAITING.pop(self, None)


def _abort(transport: asyncio.Transport) -> None:
    with contextlib.suppress(RuntimeError, OSError):  # already closed
        transport.abort()


def _evict_one(newcomer: LimitedHttpToolsProtocol) -> bool:
    """Close the connection that has waited longest on its client; False if none is waiting."""
    for protocol in _WAITING:
        if protocol is not newcomer:
            protocol.evict()
            return True
    return False


def run(
    *, host: str, port: int, workers: int, factory: str = "cds_service.bootstrap:build_app"
) -> None:
    """Run the service under uvicorn with the limited protocol (``serve`` and ``demo``)."""
    import uvicorn

    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        http="cds_service.server:LimitedHttpToolsProtocol",
        ws="none",
        loop="uvloop",
    )


__all__ = ["LimitedHttpToolsProtocol", "ServerLimits", "default_max_connections", "run"]
