"""The FHIR client: HTTP/1.1 GETs that end by their deadline, whatever the server does.

Built on sockets and h11 (a sans-I/O HTTP/1.1 parser) so that every blocking step is bounded
by one deadline for the whole request: the host name is resolved in a helper thread that the
fetch waits for only until the deadline, and each connect, TLS handshake, send and receive is
given the time that is left. A server that trickles one byte a second, in its headers or its
body, cannot hold a fetch (or the thread running it) past the deadline; a per-chunk check would.

What it never does: follow a redirect (a 3xx is a failed fetch), send a cookie, read proxy
settings from the environment, or connect to an address the call's ``FetchPolicy`` refuses.
The address is checked after resolution and the connection is made to exactly that address.
Idle keep-alive connections are reused per origin; a reused one is checked against the policy
again, and one the server closed in the meantime is replaced once.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, Union
from urllib.parse import quote, urlsplit

import h11
import msgspec
import orjson

from ..protocol import Resource
from ._client import FhirFetchError, FhirRefusedError, FhirStatusError, FhirTimeoutError
from ._policy import OPEN, FetchPolicy, FetchRefused, IPAddress, Origin, ip_literal, parse_origin

_ACCEPT = "application/fhir+json, application/json;q=0.9"
_RECV_BYTES = 64 * 1024
_MAX_RESPONSE_HEAD = 64 * 1024
# An error's OperationOutcome is a few hundred bytes; a larger body is not read for one.
_MAX_OUTCOME_BYTES = 64 * 1024
_MAX_ISSUES = 20
_MAX_TEXT = 1000
# What requests percent-encodes too: anything outside these stays as sent, escapes included.
_TARGET_SAFE = "!#$%&'()*+,/:;=?@[]~"
# A body is decoded straight into the service's FHIR models, as prefetch is: members no reader
# reads are skipped in C, and numbers keep the precision the lab wrote ("1.20") as Decimals, so
# a fetched result reads exactly as the same result prefetched. Any other JSON value is kept as
# decoded (the gatherer refuses it).
_Decoded = Union[Resource, list[Any], str, int, float, bool, None]  # noqa: UP007
_decoder = msgspec.json.Decoder(_Decoded, float_hook=Decimal)


class Resolver(Protocol):
    def resolve(self, host: str, timeout_s: float) -> Sequence[IPAddress]:
        """The addresses of ``host``; raises ``FhirTimeoutError`` after ``timeout_s``, and
        ``FhirFetchError`` when the name does not resolve."""
        ...


class SystemResolver:
    """``getaddrinfo`` in a helper thread: the fetch waits only until its deadline.

    Lookups of one name share one thread while it runs, so a name whose DNS server never
    answers ties up one helper thread, not one per fetch.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inflight: dict[str, Future[list[IPAddress]]] = {}

    def resolve(self, host: str, timeout_s: float) -> Sequence[IPAddress]:
        with self._lock:
            future = self._inflight.get(host)
            if future is None:
                future = Future()
                self._inflight[host] = future
                thread = threading.Thread(
                    target=self._lookup, args=(host, future), name="cds-dns", daemon=True
                )
                thread.start()
        try:
            return future.result(timeout=max(timeout_s, 0.0))
        except TimeoutError:
            raise FhirTimeoutError("timed out resolving the host") from None

    def _lookup(self, host: str, future: Future[list[IPAddress]]) -> None:
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            addresses: list[IPAddress] = []
            for info in infos:
                address = ip_literal(str(info[4][0]))
                if address is not None and address not in addresses:
                    addresses.append(address)
            future.set_result(addresses)
        except (OSError, UnicodeError):
            future.set_exception(FhirFetchError("the host name does not resolve"))
        finally:
            with self._lock:
                if self._inflight.get(host) is future:
                    del self._inflight[host]


@dataclass(slots=True)
class _Connection:
    origin: Origin
    address: IPAddress
    sock: socket.socket
    protocol: h11.Connection
    idle_since: float = 0.0
    eof: bool = False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class _Stale(Exception):
    """A reused connection that the server had closed before this request."""


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FhirTimeoutError("timed out")
    return left


def _host_header(url_host: str, origin: Origin) -> str:
    host = f"[{url_host}]" if ":" in url_host else url_host
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise FhirFetchError("the host name is not valid") from None
    default = 443 if origin.scheme == "https" else 80
    return host if origin.port == default else f"{host}:{origin.port}"


@dataclass(frozen=True, slots=True)
class _Request:
    origin: Origin
    target: str
    headers: list[tuple[str, str]]


def _request(url: str, bearer: str | None) -> _Request:
    origin = parse_origin(url)
    if origin is None:
        raise FhirFetchError("not an http(s) URL with a host")
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise FhirFetchError("the URL carries credentials")
    target = quote(parts.path or "/", safe=_TARGET_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_TARGET_SAFE)
    headers = [
        ("Host", _host_header(parts.hostname or origin.host, origin)),
        ("Accept", _ACCEPT),
        ("Accept-Encoding", "gzip"),
        ("User-Agent", "cds-service"),
    ]
    if bearer is not None:
        if any(c in bearer for c in "\r\n\0"):
            raise FhirFetchError("the request cannot be sent (invalid header)")
        headers.append(("Authorization", f"Bearer {bearer}"))
    return _Request(origin, target, headers)


class _Body:
    """The response body as it arrives: capped, and inflated when the server gzipped it."""

    def __init__(self, encoding: bytes, max_bytes: int) -> None:
        self._max = max_bytes
        self._chunks: list[bytes] = []
        self._size = 0
        if encoding in (b"", b"identity"):
            self._inflater = None
        elif encoding in (b"gzip", b"x-gzip"):
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == b"deflate":
            self._inflater = zlib.decompressobj()
        else:
            raise FhirFetchError("the response has an unsupported Content-Encoding")

    def add(self, data: bytes) -> None:
        if self._inflater is not None:
            try:
                data = self._inflater.decompress(data, self._max - self._size + 1)
            except zlib.error:
                raise FhirFetchError("the compressed response is corrupt") from None
            if self._inflater.unconsumed_tail:
                self._too_large()
        self._size += len(data)
        if self._size > self._max:
            self._too_large()
        self._chunks.append(data)

    def _too_large(self) -> None:
        raise FhirFetchError(f"response larger than {self._max} bytes")

    def bytes(self) -> bytes:
        return b"".join(self._chunks)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value[:_MAX_TEXT]]
    if isinstance(value, list):
        return [item[:_MAX_TEXT] for item in value[:_MAX_ISSUES] if isinstance(item, str)]
    return []


def outcome_issues(body: bytes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The issue codes and texts of an OperationOutcome body; empty for anything else."""
    try:
        outcome = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return (), ()
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return (), ()
    issues = outcome.get("issue")
    codes: list[str] = []
    texts: list[str] = []
    for issue in issues[:_MAX_ISSUES] if isinstance(issues, list) else ():
        if not isinstance(issue, dict):
            continue
        codes.extend(_strings(issue.get("code")))
        details = issue.get("details")
        texts.extend(_strings(issue.get("diagnostics")))
        texts.extend(_strings(details.get("text") if isinstance(details, dict) else None))
        texts.extend(_strings(issue.get("expression")))
        texts.extend(_strings(issue.get("location")))
    return tuple(codes), tuple(texts)


def decode_body(body: bytes) -> Any:
    """A response body as a ``Resource`` (a JSON object) or the JSON value it is."""
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError:
        raise FhirFetchError("response is not JSON") from None
    except RecursionError:  # nested deeper than the models can go: refused like prefetch
        raise FhirFetchError("response is nested too deeply") from None


def status_error(status: int, body: bytes) -> FhirStatusError:
    """The error for a non-2xx answer; its message never holds what the server sent."""
    if 300 <= status < 400:
        return FhirStatusError(status, f"HTTP {status} (redirects are not followed)")
    codes, texts = outcome_issues(body)
    return FhirStatusError(status, codes=codes, texts=texts)


class HttpFhirClient:
    """The default ``FhirClient``; thread-safe, one instance per process.

    ``resolver`` and ``tls`` are injectable for tests; ``max_bytes`` caps one response body
    (after decompression).
    """

    def __init__(
        self,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        resolver: Resolver | None = None,
        tls: ssl.SSLContext | None = None,
        max_idle_per_origin: int = 8,
        idle_timeout_s: float = 30.0,
    ) -> None:
        self._max_bytes = max_bytes
        self._resolver = resolver or SystemResolver()
        self._tls = tls or ssl.create_default_context()
        self._max_idle = max_idle_per_origin
        self._idle_timeout_s = idle_timeout_s
        self._lock = threading.Lock()
        self._idle: dict[Origin, list[_Connection]] = {}

    # --- the one method the gatherer calls -------------------------------------------------

    def get_json(
        self, url: str, *, bearer: str | None, timeout_s: float, policy: FetchPolicy = OPEN
    ) -> Any:
        if timeout_s <= 0:
            raise FhirTimeoutError("timed out")
        deadline = time.monotonic() + timeout_s
        request = _request(url, bearer)
        return decode_body(self._fetch(request, policy, deadline))

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    # --- one request --------------------------------------------------------------------------

    def _fetch(self, request: _Request, policy: FetchPolicy, deadline: float) -> bytes:
        reused = self._checkout(request.origin, policy)
        if reused is not None:
            try:
                return self._exchange(reused, request, deadline, reused=True)
            except _Stale:
                pass  # the server closed it while it was idle: once more on a new connection
        fresh = self._connect(request.origin, policy, deadline)
        try:
            return self._exchange(fresh, request, deadline, reused=False)
        except _Stale:  # pragma: no cover - only raised for reused connections
            raise FhirFetchError("connection closed without a response") from None

    def _exchange(
        self, connection: _Connection, request: _Request, deadline: float, *, reused: bool
    ) -> bytes:
        keep = False
        try:
            keep, status, body = self._round_trip(connection, request, deadline, reused)
        except TimeoutError:
            raise FhirTimeoutError("timed out") from None
        except ssl.SSLError as exc:
            raise FhirFetchError(f"TLS error ({type(exc).__name__})") from None
        except h11.ProtocolError:
            raise FhirFetchError("malformed HTTP response") from None
        except OSError as exc:
            raise FhirFetchError(f"transport error ({type(exc).__name__})") from None
        finally:
            if keep:
                self._checkin(connection)
            else:
                connection.close()
        if not 200 <= status < 300:
            raise status_error(status, body)
        return body

    def _round_trip(
        self, connection: _Connection, request: _Request, deadline: float, reused: bool
    ) -> tuple[bool, int, bytes]:
        """Send ``request``; whether the connection can be reused, the status and the body
        (a 4xx's OperationOutcome, when readable; nothing for another non-2xx)."""
        protocol, sock = connection.protocol, connection.sock
        try:
            data = protocol.send(
                h11.Request(method="GET", target=request.target, headers=request.headers)
            )
            data = (data or b"") + (protocol.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            raise FhirFetchError("the request cannot be sent (invalid header)") from None
        try:
            sock.settimeout(_remaining(deadline))
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            if reused:
                raise _Stale from None
            raise
        response = self._response_head(connection, deadline, reused)
        status = response.status_code
        if 200 <= status < 300:
            body = self._body(connection, response, deadline, self._max_bytes)
        elif 400 <= status < 500:
            # Read for its OperationOutcome, which may say what the server does not support.
            try:
                body = self._body(connection, response, deadline, _MAX_OUTCOME_BYTES)
            except FhirFetchError:  # too large, corrupt or cut short: the status alone
                return False, status, b""
        else:
            return False, status, b""
        keep = protocol.our_state is h11.DONE and protocol.their_state is h11.DONE
        if keep:
            protocol.start_next_cycle()
        return keep, status, body

    def _body(
        self, connection: _Connection, response: h11.Response, deadline: float, max_bytes: int
    ) -> bytes:
        encoding = b""
        for name, value in response.headers:
            if name == b"content-encoding":
                encoding = value.strip().lower()
        body = _Body(encoding, max_bytes)
        while True:
            event = self._next_event(connection, deadline)
            if isinstance(event, h11.Data):
                body.add(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return body.bytes()
            else:
                raise FhirFetchError("connection closed before the response ended")

    def _response_head(
        self, connection: _Connection, deadline: float, reused: bool
    ) -> h11.Response:
        protocol = connection.protocol
        first_read = True
        while True:
            try:
                event = protocol.next_event()
            except h11.RemoteProtocolError:
                closed = "connection closed without a response"
                raise FhirFetchError(
                    closed if connection.eof else "malformed HTTP response"
                ) from None
            if event is h11.NEED_DATA:
                # Nothing at all from a reused connection: it had gone stale while idle.
                chunk = self._recv(connection, deadline, stale_if_closed=reused and first_read)
                first_read = False
                protocol.receive_data(chunk)
            elif isinstance(event, h11.Response):
                return event
            elif isinstance(event, h11.InformationalResponse):
                continue
            elif isinstance(event, h11.ConnectionClosed):
                raise FhirFetchError("connection closed without a response")
            else:
                raise FhirFetchError("malformed HTTP response")

    def _recv(self, connection: _Connection, deadline: float, *, stale_if_closed: bool) -> bytes:
        sock = connection.sock
        try:
            sock.settimeout(_remaining(deadline))
            chunk = sock.recv(_RECV_BYTES)
        except ConnectionResetError:
            if stale_if_closed:
                raise _Stale from None
            raise
        if not chunk:
            if stale_if_closed:
                raise _Stale
            connection.eof = True
        return chunk

    def _next_event(self, connection: _Connection, deadline: float) -> Any:
        protocol = connection.protocol
        while True:
            try:
                event = protocol.next_event()
            except h11.RemoteProtocolError:
                if connection.eof:
                    raise FhirFetchError("connection closed before the response ended") from None
                raise
            if event is not h11.NEED_DATA:
                return event
            protocol.receive_data(self._recv(connection, deadline, stale_if_closed=False))

    # --- connections ---------------------------------------------------------------------------

    def _addresses(self, origin: Origin, policy: FetchPolicy, deadline: float) -> list[IPAddress]:
        literal = ip_literal(origin.host)
        addresses = (
            [literal]
            if literal is not None
            else list(self._resolver.resolve(origin.host, _remaining(deadline)))
        )
        if not addresses:
            raise FhirFetchError("the host name does not resolve")
        try:
            for address in addresses:
                policy.check_address(address)
        except FetchRefused as exc:
            raise FhirRefusedError(str(exc)) from None
        return addresses

    def _connect(self, origin: Origin, policy: FetchPolicy, deadline: float) -> _Connection:
        addresses = self._addresses(origin, policy, deadline)
        last_error: OSError | None = None
        for address in addresses:
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(_remaining(deadline))
                self._open(sock, address, origin.port)
            except TimeoutError:
                sock.close()
                raise FhirTimeoutError("timed out") from None
            except OSError as exc:
                sock.close()
                last_error = exc
                continue
            except BaseException:
                sock.close()
                raise
            return self._established(origin, address, sock, deadline)
        kind = type(last_error).__name__ if last_error else "no address"
        raise FhirFetchError(f"transport error ({kind})")

    def _open(self, sock: socket.socket, address: IPAddress, port: int) -> None:
        """Connect ``sock``; the one place a connection is made (tests may guard it)."""
        sock.connect((str(address), port))

    def _established(
        self, origin: Origin, address: IPAddress, sock: socket.socket, deadline: float
    ) -> _Connection:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if origin.scheme == "https":
                sock = self._tls.wrap_socket(
                    sock, server_hostname=origin.host, do_handshake_on_connect=False
                )
                sock.settimeout(_remaining(deadline))
                sock.do_handshake()
        except TimeoutError:
            sock.close()
            raise FhirTimeoutError("timed out") from None
        except ssl.SSLCertVerificationError:
            sock.close()
            raise FhirFetchError("TLS certificate not trusted") from None
        except (ssl.SSLError, OSError, ValueError) as exc:
            sock.close()
            raise FhirFetchError(f"TLS error ({type(exc).__name__})") from None
        except BaseException:
            sock.close()
            raise
        protocol = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_RESPONSE_HEAD)
        return _Connection(origin, address, sock, protocol)

    def _checkout(self, origin: Origin, policy: FetchPolicy) -> _Connection | None:
        now = time.monotonic()
        stale: list[_Connection] = []
        found: _Connection | None = None
        with self._lock:
            idle = self._idle.get(origin)
            while idle:
                connection = idle.pop()
                if now - connection.idle_since > self._idle_timeout_s:
                    stale.append(connection)
                    continue
                try:
                    policy.check_address(connection.address)
                except FetchRefused:
                    stale.append(connection)  # made under a laxer policy: connect anew
                    continue
                found = connection
                break
        for connection in stale:
            connection.close()
        return found

    def _checkin(self, connection: _Connection) -> None:
        connection.idle_since = time.monotonic()
        with self._lock:
            idle = self._idle.setdefault(connection.origin, [])
            if len(idle) < self._max_idle:
                idle.append(connection)
                return
        connection.close()
