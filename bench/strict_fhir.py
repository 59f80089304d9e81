"""A strict FHIR R4 server on loopback, with the limits Oracle Health documents for its R4 API.

For the fallback's end-to-end tests and its benchmark (``python -m bench.fallback``):
- no ``MedicationStatement`` (its R4 API lists none): any request for one is a 404 with an
  OperationOutcome;
- ``_count`` over 200 is a 400 with an OperationOutcome that states the range;
- ``_sort`` on Observation is a 400 with an OperationOutcome (not supported); Observations come
  newest first without it;
- searches need ``patient``; ``code`` and ``status`` filter; ``Bundle.link`` next pages through
  results larger than a page (50 without ``_count``).

It answers every request after a fixed ``latency_s`` and logs each one (path, query, status and
when it was handled), so tests can assert which requests were made and the benchmark can
subtract the slowest one from a call's latency. It serves the resources it is given; it is not a
FHIR server.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

MAX_COUNT = 200
DEFAULT_COUNT = 50
SEARCHABLE = ("Observation", "MedicationRequest", "Condition")
READABLE = ("Patient", "Medication", *SEARCHABLE)
_SAFE = "|,:/"


@dataclass(frozen=True, slots=True)
class Logged:
    """One request the server answered."""

    path: str
    query: tuple[tuple[str, str], ...]
    status: int
    started: float
    """``time.perf_counter()`` when the request line had been read."""
    ended: float
    """``time.perf_counter()`` when the response had been written."""

    def param(self, name: str) -> str | None:
        return next((value for key, value in self.query if key == name), None)

    @property
    def resource_type(self) -> str:
        return self.path.rstrip("/").split("/")[2] if self.path.count("/") >= 2 else ""


def outcome(code: str, diagnostics: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }


def _when(resource: Mapping[str, Any]) -> str:
    period = resource.get("effectivePeriod")
    for value in (
        resource.get("effectiveDateTime"),
        resource.get("effectiveInstant"),
        period.get("start") if isinstance(period, dict) else None,
        resource.get("issued"),
        resource.get("authoredOn"),
    ):
        if isinstance(value, str):
            return value
    return ""


def _instant(value: str) -> float:
    try:
        parsed = datetime.fromisoformat(value) if len(value) >= 10 else None
    except ValueError:
        parsed = None
    if parsed is None:
        return float("-inf")
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _codes(resource: Mapping[str, Any]) -> set[str]:
    concept = resource.get("code") or {}
    found: set[str] = set()
    for coding in concept.get("coding", []) if isinstance(concept, dict) else []:
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            found.add(f"{coding.get('system', '')}|{coding['code']}")
            found.add(coding["code"])
    return found


def _patient_of(resource: Mapping[str, Any]) -> str | None:
    for field in ("subject", "patient"):
        reference = resource.get(field)
        if isinstance(reference, dict) and isinstance(reference.get("reference"), str):
            return str(reference["reference"]).rsplit("Patient/", 1)[-1]
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up (a fetch past its deadline) is not the server's error


class StrictFhirServer:
    """Serves ``add``-ed resources at ``base`` (``http://127.0.0.1:<port>/fhir``)."""

    def __init__(self, *, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self._by_id: dict[tuple[str, str], dict[str, Any]] = {}
        self._by_patient: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._lock = threading.Condition()
        self._log: list[Logged] = []
        self._in_flight = 0
        self.httpd = _Server(("127.0.0.1", 0), _handler(self))
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"

    def add(self, resources: Iterable[Mapping[str, Any]]) -> None:
        """Index resources by type and id, and (for searches) by type and patient."""
        for resource in resources:
            kind, resource_id = resource["resourceType"], resource.get("id")
            if isinstance(resource_id, str):
                self._by_id[(kind, resource_id)] = dict(resource)
            patient = _patient_of(resource)
            if patient is not None:
                self._by_patient.setdefault((kind, patient), []).append(dict(resource))

    @property
    def log(self) -> list[Logged]:
        """The requests answered so far, once those being answered are logged too."""
        with self._lock:
            self._lock.wait_for(lambda: self._in_flight == 0, timeout=10)
            return list(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._lock.wait_for(lambda: self._in_flight == 0, timeout=10)
            self._log.clear()

    def arrived(self) -> None:
        with self._lock:
            self._in_flight += 1

    def record(self, entry: Logged | None) -> None:
        with self._lock:
            if entry is not None:
                self._log.append(entry)
            self._in_flight -= 1
            self._lock.notify_all()

    @contextmanager
    def running(self) -> Iterator[StrictFhirServer]:
        thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.httpd.shutdown()
            self.httpd.server_close()
            thread.join(timeout=5)

    # --- answers ------------------------------------------------------------------------------

    def answer(self, path: str, query: list[tuple[str, str]]) -> tuple[int, dict[str, Any]]:
        segments = path.strip("/").split("/")
        if len(segments) < 2 or segments[0] != "fhir":
            return 404, outcome("not-found", "unknown path")
        kind = segments[1]
        if kind not in READABLE:
            return 404, outcome("not-supported", f"Resource type {kind} is not supported.")
        if len(segments) == 3:
            found = self._by_id.get((kind, segments[2]))
            if found is None:
                return 404, outcome("not-found", f"{kind} resource not found")
            return 200, found
        if len(segments) != 2 or kind not in SEARCHABLE:
            return 404, outcome("not-supported", f"Search of {kind} is not supported.")
        return self.search(kind, query)

    def search(self, kind: str, query: list[tuple[str, str]]) -> tuple[int, dict[str, Any]]:
        params = dict(query)
        count_text = params.get("_count")
        count = DEFAULT_COUNT
        if count_text is not None:
            if not count_text.isdigit() or not 1 <= int(count_text) <= MAX_COUNT:
                return 400, outcome(
                    "invalid",
                    f"The _count parameter value {count_text} is invalid: it must be an integer "
                    f"between 1 and {MAX_COUNT}.",
                )
            count = int(count_text)
        if kind == "Observation" and "_sort" in params:
            return 400, outcome("not-supported", "The _sort parameter is not supported.")
        patient = params.get("patient")
        if not patient:
            return 400, outcome("required", "The patient parameter is required.")
        matches = list(self._by_patient.get((kind, patient), ()))
        if "code" in params:
            wanted = set(params["code"].split(","))
            matches = [r for r in matches if _codes(r) & wanted]
        if "status" in params:
            statuses = set(params["status"].split(","))
            matches = [r for r in matches if r.get("status") in statuses]
        if kind == "Observation":  # newest first, as the server documents
            matches.sort(key=lambda r: _instant(_when(r)), reverse=True)
        offset = int(params.get("_offset", "0") or 0)
        return 200, self._bundle(kind, query, matches, offset, count)

    def _bundle(
        self,
        kind: str,
        query: list[tuple[str, str]],
        matches: list[dict[str, Any]],
        offset: int,
        count: int,
    ) -> dict[str, Any]:
        kept = [(name, value) for name, value in query if name != "_offset"]
        links = [{"relation": "self", "url": self._url(kind, query)}]
        if offset + count < len(matches):
            links.append(
                {
                    "relation": "next",
                    "url": self._url(kind, [*kept, ("_offset", str(offset + count))]),
                }
            )
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{self.base}/{kind}/{resource.get('id')}",
                    "resource": resource,
                    "search": {"mode": "match"},
                }
                for resource in matches[offset : offset + count]
            ],
        }

    def _url(self, kind: str, query: list[tuple[str, str]]) -> str:
        return f"{self.base}/{kind}?{urlencode(query, safe=_SAFE)}"


def _handler(server: StrictFhirServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real FHIR server offers
        disable_nagle_algorithm = True

        def parse_request(self) -> bool:
            # The request line has just been read: the request is here. Its latency runs from
            # now, so the server's own parsing of the head is inside the fixed latency.
            self.arrived = time.perf_counter()
            server.arrived()
            parsed = super().parse_request()
            if not parsed or self.command != "GET":
                server.record(None)
            return parsed

        def do_GET(self) -> None:
            entry: Logged | None = None
            try:
                entry = self._answer()
            finally:
                server.record(entry)

        def _answer(self) -> Logged:
            started = self.arrived
            parts = urlsplit(self.path)
            query = parse_qsl(parts.query, keep_blank_values=True)
            status, body = server.answer(parts.path, query)
            # The whole response in one write: head and body leave together, as from a real
            # server (with Nagle's algorithm on, a body written after its head waits for the
            # client's delayed ACK, 40 ms).
            payload = orjson.dumps(body)
            head = (
                f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
                "Content-Type: application/fhir+json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n"
            )
            if server.latency_s:
                time.sleep(max(0.0, server.latency_s - (time.perf_counter() - started)))
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(head.encode("ascii") + payload)
                self.wfile.flush()
            return Logged(parts.path, tuple(query), status, started, time.perf_counter())

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
