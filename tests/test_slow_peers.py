"""Hostile and broken peers against a real ``cds-service serve`` process.

- A FHIR server that trickles one byte at a time delays only its own callers: another FHIR
  server's callers keep getting their cards, and the trickling calls end at the deadline.
- Slowloris clients, oversized request heads, slow bodies and clients that hang up mid-body:
  the server drops them by its limits, and legitimate requests keep being answered.

Everything is on loopback, every loop is bounded in count and time, and the only timed
assertions are outside-in ones in whole seconds with wide margins.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from .raw_http import answer, raw_server, trickle
from .store_support import Server, serve
from .support import LOINC, UCUM, patient

pytestmark = pytest.mark.slow

HOOK = "/cds-services/mg-patient-view"
FHIR_DEADLINE_S = 2.0
MARGIN_S = 3.0


def _today_route(target: str) -> tuple[str, Any]:
    """A well-behaved FHIR server that knows pat-1: Mg 1.1 mg/dL today (a critical card)."""
    path = urlsplit(target).path
    if path.endswith("/Patient/pat-1"):
        return "200 OK", patient()
    if path.endswith("/Observation"):
        observation = {
            "resourceType": "Observation",
            "id": "mg-1",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "19123-9"}]},
            "subject": {"reference": "Patient/pat-1"},
            "effectiveDateTime": datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z"),
            "valueQuantity": {"value": 1.1, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
        }
        return "200 OK", {"resourceType": "Bundle", "entry": [{"resource": observation}]}
    return "200 OK", {"resourceType": "Bundle", "entry": []}


def _fallback_call(base: str, fhir_server: str, timeout_s: float = 30) -> tuple[int, Any, float]:
    request = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "fhirServer": fhir_server,
        "context": {"userId": "Practitioner/example", "patientId": "pat-1"},
    }
    started = time.monotonic()
    response = requests.post(base + HOOK, json=request, timeout=timeout_s)
    return response.status_code, response.json(), time.monotonic() - started


def _metric(server: Server, name: str, **labels: str) -> float:
    text = requests.get(f"{server.base}/metrics", timeout=5).text
    selector = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    wanted = f"{name}{{{selector}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# --- a trickling FHIR server ------------------------------------------------------------------


def test_a_trickling_fhir_server_delays_only_its_own_callers(tmp_path: Path) -> None:
    env = {"CDS_FHIR_TIMEOUT_S": str(FHIR_DEADLINE_S)}
    with (
        raw_server(trickle(head_first=True, interval_s=0.5)) as slow,
        raw_server(answer(_today_route), host="127.0.0.2") as fast,
        serve(f"sqlite:///{tmp_path}/db.sqlite3", tmp_path / "log", workers=1, env=env) as server,
        ThreadPoolExecutor(max_workers=24) as pool,
    ):
        # Twelve calls whose FHIR server trickles: 48 fetches, more than the fetch threads a
        # single server may hold, and more than the 8 calls that once exhausted them all.
        trickling = [
            pool.submit(_fallback_call, server.base, f"{slow.origin}/fhir") for _ in range(12)
        ]
        while len(slow.heads) < 8:  # the trickle is under way
            time.sleep(0.05)
        normal_started = time.monotonic()
        normal = [
            pool.submit(_fallback_call, server.base, f"{fast.origin}/fhir") for _ in range(20)
        ]
        normal_results = [future.result(timeout=60) for future in normal]
        normal_done = time.monotonic()
        trickle_results = [future.result(timeout=60) for future in trickling]
        # The service hangs up on every trickling connection by the deadline: no thread of its
        # own keeps reading after the 412.
        deadline = time.monotonic() + MARGIN_S
        while slow.active and time.monotonic() < deadline:
            time.sleep(0.05)
        assert slow.active == 0, "a trickling connection outlived its call's deadline"

    # Every caller of the well-behaved server got its card, while the trickle was running.
    for status, body, _elapsed in normal_results:
        assert status == 200, body
        assert [card["indicator"] for card in body["cards"]] == ["critical"]
    assert normal_done - normal_started < FHIR_DEADLINE_S + MARGIN_S
    # The trickling calls were answered 412 at their deadline, not when the trickle ended.
    for status, body, elapsed in trickle_results:
        assert status == 412, body
        assert {issue["diagnostics"].split(":")[0] for issue in body["issue"]} == {
            "FHIR server timed out"
        }
        assert elapsed < FHIR_DEADLINE_S + MARGIN_S
    # (That one server gets at most 16 fetch threads at once is shown in test_scheduler.py.)


# --- slow and huge clients ------------------------------------------------------------------


@dataclass
class Limited:
    server: Server

    def log_since(self, offset: int) -> list[dict[str, Any]]:
        lines = []
        for text in self.server.output()[offset:].splitlines():
            if text.startswith("{"):
                lines.append(json.loads(text))
        return lines

    def log_offset(self) -> int:
        return len(self.server.output())


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Limited]:
    """One worker with a 256-descriptor limit (so 128 connections at most), 2 s head and body
    deadlines and a 32 KiB head cap."""
    tmp_path = tmp_path_factory.mktemp("limited")
    env = {"CDS_HEADER_TIMEOUT_S": "2", "CDS_BODY_TIMEOUT_S": "2", "CDS_MAX_HEADER_KB": "32"}
    with serve(
        f"sqlite:///{tmp_path}/db.sqlite3",
        tmp_path / "log",
        workers=1,
        env=env,
        max_open_files=256,
    ) as server:
        yield Limited(server)


def _address(server: Server) -> tuple[str, int]:
    parts = urlsplit(server.base)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _read_all(sock: socket.socket, timeout_s: float) -> bytes:
    sock.settimeout(timeout_s)
    data = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_an_oversized_request_head_is_431_and_never_buffered(limited: Limited) -> None:
    server = limited.server
    rss_before = _rss_kib(server.process.pid)
    with socket.create_connection(_address(server), timeout=10) as sock:
        sock.sendall(b"POST /cds-services/mg-patient-view HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        chunk = b"a" * 65536
        with contextlib.suppress(OSError):  # the server hangs up long before 64 MiB
            while sent < 64 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
        reply = _read_all(sock, 5)
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]
    assert sent < 64 * 1024 * 1024
    assert _rss_kib(server.process.pid) - rss_before < 16 * 1024
    assert requests.get(f"{server.base}/healthz", timeout=5).status_code == 200
    assert _metric(server, "cds_connections_dropped_total", reason="header-too-large") >= 1


def test_a_head_that_fits_the_cap_is_served(limited: Limited) -> None:
    headers = {"X-Padding": "a" * 20_000}  # with the rest of the head, under 32 KiB
    assert requests.get(f"{limited.server.base}/healthz", headers=headers, timeout=5).ok


def test_a_slow_body_is_dropped_at_its_deadline_as_a_client_abort(limited: Limited) -> None:
    server = limited.server
    offset = limited.log_offset()
    with socket.create_connection(_address(server), timeout=10) as sock:
        sock.sendall(
            b"POST /cds-services/mg-patient-view HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n" + b"{" * 1000
        )
        started = time.monotonic()
        reply = _read_all(sock, 10)
        elapsed = time.monotonic() - started
    assert reply.startswith(b"HTTP/1.1 408 "), reply[:200]
    assert elapsed < 2 + MARGIN_S
    time.sleep(0.5)
    lines = limited.log_since(offset)
    aborted = [line for line in lines if line.get("event") == "request.client_aborted"]
    assert [(line["level"], line["route"]) for line in aborted] == [("info", "hook")]
    assert not [line for line in lines if line.get("level") in ("error", "critical")]
    assert "Traceback" not in server.output()[offset:]


def test_a_client_gone_mid_body_is_one_info_line_and_not_a_200(limited: Limited) -> None:
    server = limited.server
    offset = limited.log_offset()
    aborts = _metric(server, "cds_client_aborts_total", route="hook")
    ok = _metric(server, "cds_responses_total", service="mg-patient-view", status="200")
    with socket.create_connection(_address(server), timeout=10) as sock:
        sock.sendall(
            b"POST /cds-services/mg-patient-view HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 50000\r\n\r\n" + b"[" * 2000
        )
        time.sleep(0.2)
    deadline = time.monotonic() + MARGIN_S
    while _metric(server, "cds_client_aborts_total", route="hook") == aborts:
        assert time.monotonic() < deadline, "the abort was not counted"
        time.sleep(0.1)
    lines = limited.log_since(offset)
    aborted = [line for line in lines if line.get("event") == "request.client_aborted"]
    assert len(aborted) == 1 and aborted[0]["level"] == "info"
    assert not [line for line in lines if line.get("level") in ("error", "critical")]
    assert "Traceback" not in server.output()[offset:]
    assert _metric(server, "cds_responses_total", service="mg-patient-view", status="200") == ok
    assert _metric(server, "cds_responses_total", service="mg-patient-view", status="499") >= 1


class Slowloris:
    """Holds ``count`` connections open, sending one more header byte every ``interval_s``, and
    reopens each one the server closes at the next tick, for ``seconds``."""

    def __init__(self, address: tuple[str, int], count: int, interval_s: float, seconds: float):
        self.address = address
        self.count = count
        self.interval_s = interval_s
        self.seconds = seconds
        self.opened = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Slowloris:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join(timeout=self.seconds + 10)

    def _open(self) -> socket.socket | None:
        try:
            sock = socket.create_connection(self.address, timeout=1)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        except OSError:
            return None
        self.opened += 1
        return sock

    def _run(self) -> None:
        sockets: list[socket.socket | None] = [self._open() for _ in range(self.count)]
        ends = time.monotonic() + self.seconds
        while time.monotonic() < ends:
            time.sleep(self.interval_s)
            for index, sock in enumerate(sockets):
                try:
                    if sock is None:
                        raise OSError
                    sock.sendall(b"X")  # one more byte of a header name that never ends
                except OSError:
                    self.dropped += 1
                    if sock is not None:
                        sock.close()
                    sockets[index] = self._open()
        for sock in sockets:
            if sock is not None:
                sock.close()


def test_slowloris_connections_are_dropped_and_legitimate_requests_keep_answers(
    limited: Limited,
) -> None:
    server = limited.server
    evicted = _metric(server, "cds_connections_dropped_total", reason="evicted")
    statuses: list[int | str] = []
    # 300 slow connections against a worker that may hold 128 (its 256 descriptors halved).
    with Slowloris(_address(server), count=300, interval_s=0.5, seconds=8) as attack:
        time.sleep(1.5)  # the attack is established
        for _ in range(30):
            try:
                status = requests.get(f"{server.base}/healthz", timeout=5).status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            statuses.append(status)
            time.sleep(0.15)
    assert statuses == [200] * 30, statuses
    assert attack.opened > 300 and attack.dropped > 0, "the server shed slow connections"
    assert _metric(server, "cds_connections_dropped_total", reason="evicted") > evicted
    assert server.process.poll() is None
