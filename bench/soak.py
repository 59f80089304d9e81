"""Soak a real server with a mix of good, bad and hostile traffic: ``python -m bench.soak``.

Starts ``cds-service serve`` (auth off, SQLite in a temporary directory, ``--workers 2``), a
well-behaved local FHIR server and a trickling one (one byte every half second), then runs
``--concurrency`` client threads for ``--seconds`` over this mix:

| share | request | expected |
|---:|---|---|
| 55% | patient-view, 200 Observations and 30 MedicationRequests in prefetch | 200 |
| 10% | patient-view with no prefetch: fetched from the local FHIR server | 200 |
| 3% | patient-view whose FHIR server trickles | 412 at the FHIR deadline |
| 6% | feedback on a card | 200 |
| 5% | invalid JSON | 400 |
| 3% | a prefetched Patient of another id | 400 |
| 4% | a body sent as text/plain | 415 |
| 3% | GET on a hook | 405 |
| 3% | an unknown service | 404 |
| 4% | a client that hangs up in the middle of its body | (no answer) |
| 2% | a request head over the cap | 431 |
| 2% | a request head that stops half way (the server's head deadline) | 408 or closed |

It prints the requests made, every status seen per kind, the number of 5xx answers and of
transport errors, and the resident memory of the server's processes (sum over the supervisor
and its workers) after a warm-up, every 30 s, and at the end. Exit status 1 when any 5xx was
seen.

Everything runs on loopback; every loop is bounded by ``--seconds``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .patients import patient_view_request
from .run import REPO, _free_port, _process_tree

HOOK = "/cds-services/mg-patient-view"
FEEDBACK = "/cds-services/mg-patient-view/feedback"
JSON = {"Content-Type": "application/json"}


# --- FHIR servers -------------------------------------------------------------------------------


def _observation_today() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "mg-soak",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "19123-9"}]},
        "subject": {"reference": "Patient/soak-1"},
        "effectiveDateTime": datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z"),
        "valueQuantity": {"value": 1.1, "unit": "mg/dL", "system": "http://unitsofmeasure.org"},
    }


class _Fhir(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path.startswith("/fhir/Patient/"):
            document: Any = {"resourceType": "Patient", "id": "soak-1", "gender": "female"}
        elif self.path.startswith("/fhir/Observation"):
            document = {"resourceType": "Bundle", "entry": [{"resource": _observation_today()}]}
        else:
            document = {"resourceType": "Bundle", "entry": []}
        body = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Trickle(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        with contextlib.suppress(OSError):
            for _ in range(120):  # at most a minute, one byte every half second
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.5)

    def log_message(self, format: str, *args: Any) -> None:
        return


def _start(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True).start()
    return server


# --- the server under test ----------------------------------------------------------------------


def _rss_mib(pid: int) -> float:
    total = 0
    for process in _process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return round(total / 1024, 1)


def _serve(workers: int, database_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CDS_DATABASE_URL": database_url,
        "CDS_AUTH_MODE": "off",
        "CDS_DEMO_FHIR": "0",
        "CDS_LOG_LEVEL": "WARNING",
        "CDS_PATIENT_HASH_KEY": "soak",
        "CDS_HEADER_TIMEOUT_S": "2",
    }
    env.pop("CDS_TRUST_FILE", None)
    command = [sys.executable, "-m", "cds_service.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return process
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start")


# --- the traffic --------------------------------------------------------------------------------


class Client:
    """One load thread's keep-alive connection, reopened whenever the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Any:
        for attempt in (0, 1):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.connection.request(method, path, body, headers)
                response = self.connection.getresponse()
                data = response.read()
                if response.getheader("connection", "").lower() == "close":
                    self.close()
                return response.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _hook_body(request: dict[str, Any]) -> bytes:
    request = dict(request)
    request["hookInstance"] = str(uuid.uuid4())
    return json.dumps(request).encode()


def _fallback(fhir_server: str) -> bytes:
    return _hook_body(
        {
            "hook": "patient-view",
            "fhirServer": fhir_server,
            "context": {"userId": "Practitioner/soak", "patientId": "soak-1"},
        }
    )


def _raw(port: int, data: bytes, *, read: bool) -> str:
    """Send ``data`` on a fresh connection; the status line's code, or "closed"."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        if not read:
            return "aborted"
        with contextlib.suppress(OSError):
            reply = sock.recv(64)
            if reply.startswith(b"HTTP/1.1 "):
                return reply[9:12].decode()
    return "closed"


class Mix:
    def __init__(self, port: int, fhir: str, trickle: str) -> None:
        self.port = port
        self.full = patient_view_request(200, now=datetime.now(UTC))
        other = json.loads(json.dumps(self.full))
        other["prefetch"]["patient"]["id"] = "someone-else"
        self.other_patient = other
        self.fhir = fhir
        self.trickle = trickle
        self.kinds: list[tuple[str, int, Callable[[Client], Any]]] = [
            ("prefetch", 55, lambda c: c.request("POST", HOOK, _hook_body(self.full), JSON)),
            ("fhir-fallback", 10, lambda c: c.request("POST", HOOK, _fallback(self.fhir), JSON)),
            ("fhir-trickle", 3, lambda c: c.request("POST", HOOK, _fallback(self.trickle), JSON)),
            ("feedback", 6, self._feedback),
            ("invalid-json", 5, lambda c: c.request("POST", HOOK, b'{"hook": ', JSON)),
            (
                "other-patient",
                3,
                lambda c: c.request("POST", HOOK, _hook_body(self.other_patient), JSON),
            ),
            (
                "text-plain",
                4,
                lambda c: c.request("POST", HOOK, b"{}", {"Content-Type": "text/plain"}),
            ),
            ("get-hook", 3, lambda c: c.request("GET", HOOK, None, {})),
            ("unknown-service", 3, lambda c: c.request("POST", "/cds-services/x", b"{}", JSON)),
            ("abort-mid-body", 4, lambda c: self._abort()),
            ("huge-head", 2, lambda c: self._huge_head()),
            ("stalled-head", 2, lambda c: self._stalled_head()),
        ]
        self.weights = [weight for _, weight, _ in self.kinds]

    def _feedback(self, client: Client) -> Any:
        item = {
            "card": str(uuid.uuid4()),
            "outcome": "overridden",
            "overrideReason": {"userComment": "soak"},
            "outcomeTimestamp": datetime.now(UTC).isoformat(),
        }
        return client.request("POST", FEEDBACK, json.dumps({"feedback": [item]}).encode(), JSON)

    def _abort(self) -> Any:
        head = f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        head += "Content-Length: 100000\r\n\r\n"
        return _raw(self.port, head.encode() + b"[" * 5000, read=False), b""

    def _huge_head(self) -> Any:
        head = f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * 200_000}\r\n\r\n"
        return _raw(self.port, head.encode(), read=True), b""

    def _stalled_head(self) -> Any:
        return _raw(self.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Stall", read=True), b""

    def pick(self, rng: random.Random) -> tuple[str, Callable[[Client], Any]]:
        name, _, call = rng.choices(self.kinds, weights=self.weights)[0]
        return name, call


def _load(
    mix: Mix, seconds: float, concurrency: int, seed: int
) -> tuple[Counter[tuple[str, str]], int]:
    statuses: Counter[tuple[str, str]] = Counter()
    lock = threading.Lock()
    ends = time.monotonic() + seconds

    def worker(index: int) -> None:
        rng = random.Random(seed + index)
        client = Client(mix.port)
        while time.monotonic() < ends:
            name, call = mix.pick(rng)
            try:
                status, _ = call(client)
                result = str(status)
            except Exception as exc:
                client.close()
                result = f"error:{type(exc).__name__}"
            with lock:
                statuses[(name, result)] += 1
        client.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    return statuses, sum(statuses.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args(argv)

    fhir, trickle = _start(_Fhir), _start(_Trickle)
    port = _free_port()
    with tempfile.TemporaryDirectory() as directory:
        process = _serve(args.workers, f"sqlite:///{directory}/soak.sqlite3", port)
        try:
            mix = Mix(
                port,
                f"http://127.0.0.1:{fhir.server_address[1]}/fhir",
                f"http://127.0.0.1:{trickle.server_address[1]}/fhir",
            )
            _load(mix, min(10.0, args.seconds), args.concurrency, args.seed + 1000)  # warm-up
            rss_start = _rss_mib(process.pid)
            started = time.monotonic()
            samples: list[tuple[float, float]] = []
            sampling = threading.Event()

            def sample() -> None:
                while not sampling.wait(30):
                    samples.append((time.monotonic() - started, _rss_mib(process.pid)))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            statuses, total = _load(mix, args.seconds, args.concurrency, args.seed)
            sampling.set()
            sampler.join(5)
            elapsed = time.monotonic() - started
            rss_end = _rss_mib(process.pid)
            alive = process.poll() is None
        finally:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(15)
            fhir.shutdown()
            trickle.shutdown()

    server_errors = sum(n for (_, s), n in statuses.items() if s.startswith("5"))
    transport_errors = sum(n for (_, s), n in statuses.items() if s.startswith("error"))
    print(
        f"soak: {args.seconds:.0f} s at concurrency {args.concurrency}, "
        f"{args.workers} workers, seed {args.seed}"
    )
    for name, _, _ in mix.kinds:
        seen = {s: n for (kind, s), n in sorted(statuses.items()) if kind == name}
        print(
            f"  {name:16} {sum(seen.values()):7,}  "
            + ", ".join(f"{s}: {n:,}" for s, n in seen.items())
        )
    print(f"requests: {total:,} ({total / elapsed:,.0f}/s)")
    print(f"5xx: {server_errors}")
    print(f"transport errors: {transport_errors}")
    print(f"server RSS (all processes): start {rss_start} MiB, end {rss_end} MiB")
    if samples:
        print("server RSS every 30 s: " + ", ".join(f"{mib} MiB" for _, mib in samples))
    print(f"server still running at the end: {'yes' if alive else 'NO'}")
    return 1 if server_errors or not alive else 0


if __name__ == "__main__":
    raise SystemExit(main())
