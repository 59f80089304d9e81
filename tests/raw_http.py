"""A byte-level HTTP server on 127.0.0.1 for tests of misbehaving peers.

``http.server`` cannot trickle a response one byte at a time or tell when the client hung up;
this one can. Each connection is served in its own thread: the request head is read, recorded,
and handed to the test's ``Responder``, which writes whatever it likes to the socket and says
whether the connection may serve another request.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Responder = Callable[["Exchange"], bool]


@dataclass
class Exchange:
    server: RawServer
    sock: socket.socket
    head: bytes

    @property
    def target(self) -> str:
        return self.head.split(b" ", 2)[1].decode("latin-1")

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode():
                return value.strip().decode("latin-1")
        return None

    def send(self, data: bytes) -> bool:
        """False once the client has gone."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def client_gone(self, wait_s: float) -> bool:
        """Wait up to ``wait_s`` for the client to close its end; True if it did."""
        readable, _, _ = select.select([self.sock], [], [], wait_s)
        if not readable:
            return False
        try:
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


@dataclass
class RawServer:
    responder: Responder
    host: str = "127.0.0.1"
    heads: list[bytes] = field(default_factory=list)
    connections: int = 0
    active: int = 0
    max_active: int = 0
    """Connections open at once, and the most there ever were."""
    hangups: list[float] = field(default_factory=list)
    """``time.monotonic()`` at which a trickling responder saw its client hang up."""
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((self.host, 0))
        self._listener.listen(128)
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self.origin = f"http://{self.host}:{self.port}"
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def paths(self) -> list[str]:
        with self._lock:
            return [head.split(b" ", 2)[1].decode("latin-1") for head in self.heads]

    def hung_up(self, at: float) -> None:
        with self._lock:
            self.hangups.append(at)

    def close(self) -> None:
        self.stop.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:  # wake the threads waiting for a next request
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._sockets.append(sock)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self._exchanges(sock)
        finally:
            with self._lock:
                self.active -= 1

    def _exchanges(self, sock: socket.socket) -> None:
        with sock:
            sock.settimeout(5)
            buffer = b""
            while not self.stop.is_set():
                try:
                    while b"\r\n\r\n" not in buffer:
                        chunk = sock.recv(65536)
                        if not chunk:
                            return
                        buffer += chunk
                except OSError:
                    return
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                with self._lock:
                    self.heads.append(head)
                if not self.responder(Exchange(self, sock, head)):
                    return


@contextlib.contextmanager
def raw_server(responder: Responder, host: str = "127.0.0.1") -> Iterator[RawServer]:
    server = RawServer(responder, host)
    try:
        yield server
    finally:
        server.close()


# --- responders -------------------------------------------------------------------------------


def response(
    status: str, body: bytes, headers: tuple[tuple[str, str], ...] = (), *, close: bool = False
) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def json_body(document: Any) -> bytes:
    return json.dumps(document).encode()


def answer(route: Callable[[str], tuple[str, Any]], *, close_after: bool = False) -> Responder:
    """A well-behaved server: ``route(target)`` gives the status line and the JSON document."""

    def respond(exchange: Exchange) -> bool:
        status, document = route(exchange.target)
        body = json_body(document)
        headers = (("Content-Type", "application/fhir+json"),)
        return exchange.send(response(status, body, headers, close=close_after)) and not close_after

    return respond


def gzipped(document: Any) -> Responder:
    def respond(exchange: Exchange) -> bool:
        body = gzip.compress(json_body(document))
        headers = (("Content-Type", "application/json"), ("Content-Encoding", "gzip"))
        return exchange.send(response("200 OK", body, headers))

    return respond


def chunked(document: Any, pieces: int = 3) -> Responder:
    def respond(exchange: Exchange) -> bool:
        body = json_body(document)
        size = max(1, len(body) // pieces)
        parts = [body[i : i + size] for i in range(0, len(body), size)]
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        encoded = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"
        return exchange.send(head + encoded)

    return respond


def redirect(location: str, status: str = "302 Found") -> Responder:
    def respond(exchange: Exchange) -> bool:
        return exchange.send(response(status, b"", (("Location", location),)))

    return respond


def trickle(*, head_first: bool, interval_s: float = 0.2) -> Responder:
    """One byte every ``interval_s``: of the body after a complete head (``head_first``), or of
    the head itself. Records when the client hangs up; gives up after 60 s or at ``stop``."""

    def respond(exchange: Exchange) -> bool:
        started = time.monotonic()
        if head_first:
            head = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n"
            )
            if not exchange.send(head):
                exchange.server.hung_up(time.monotonic())
                return False
            drip = b" " * 100000
        else:
            drip = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100000
        for byte in drip:
            if exchange.server.stop.is_set() or time.monotonic() - started > 60:
                return False
            if not exchange.send(bytes([byte])) or exchange.client_gone(interval_s):
                exchange.server.hung_up(time.monotonic())
                return False
        return False

    return respond
