"""A real FHIR endpoint on 127.0.0.1 serving canned JSON, and builders for hook requests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cds_service.gathering import GatheredData, gather
from cds_service.gathering._client import FhirClient
from cds_service.protocol import HookRequest

PATIENT_ID = "pat-7f3a"
TOKEN = "secret-access-token-123"
TEMPLATES = {
    "patient": "Patient/{{context.patientId}}",
    "observations": (
        "Observation?patient={{context.patientId}}&code=http://loinc.org|19123-9&_sort=-date"
    ),
    "medicationRequests": "MedicationRequest?patient={{context.patientId}}&status=active",
}


@dataclass(frozen=True, slots=True)
class Seen:
    path: str
    query: Mapping[str, list[str]]
    authorization: str | None


@dataclass(frozen=True, slots=True)
class Route:
    status: int
    body: bytes
    delay_s: float


Responder = Callable[[str, Mapping[str, list[str]]], tuple[int, Any] | None]


class FakeFhirServer:
    """Routes by ``respond(path, query)`` first (when set), then by exact path+query, then by
    path; records every request it sees."""

    def __init__(self) -> None:
        self.respond: Responder | None = None
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.base = f"{self.origin}/fhir"

    def add(
        self, path: str, body: Any, *, status: int = 200, delay_s: float = 0.0, raw: bool = False
    ) -> None:
        payload = body if raw else json.dumps(body).encode()
        self.routes[path] = Route(status, payload, delay_s)

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def paths(self) -> list[str]:
        with self._lock:
            return [s.path for s in self.seen]


def _handler(server: FakeFhirServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            server.record(
                Seen(parts.path, parse_qs(parts.query), self.headers.get("Authorization"))
            )
            answer = server.respond(parts.path, parse_qs(parts.query)) if server.respond else None
            route = (
                Route(answer[0], json.dumps(answer[1]).encode(), 0.0)
                if answer is not None
                else server.routes.get(self.path) or server.routes.get(parts.path)
            )
            if route is None:
                route = Route(404, json.dumps(outcome("not-found")).encode(), 0.0)
            if route.delay_s:
                server.release.wait(route.delay_s)  # released at teardown
            try:
                self.send_response(route.status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up at its deadline, as intended

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


# --- resources ------------------------------------------------------------------------------


def outcome(
    code: str = "timeout", severity: str = "error", diagnostics: str = "canned"
) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def patient() -> dict[str, Any]:
    return {"resourceType": "Patient", "id": PATIENT_ID, "gender": "female"}


def observation(obs_id: str, value: float = 0.6, when: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "19123-9"}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "valueQuantity": {"value": value, "unit": "mmol/L"},
    }
    if when is not None:
        resource["effectiveDateTime"] = when
    return resource


def med_request(req_id: str, reference: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": req_id,
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
    }
    if reference is not None:
        resource["medicationReference"] = {"reference": reference, "display": "Tacrolimus 1 MG"}
    return resource


def medication(med_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Medication",
        "id": med_id,
        "code": {"text": "Tacrolimus 1 MG Oral Capsule"},
    }


def bundle(
    *resources: Mapping[str, Any], next_url: str | None = None, included: tuple[Any, ...] = ()
) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [
        {"resource": dict(r), "search": {"mode": "match"}} for r in resources
    ]
    entries += [{"resource": dict(r), "search": {"mode": "include"}} for r in included]
    result: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    if next_url is not None:
        result["link"] = [{"relation": "self", "url": "x"}, {"relation": "next", "url": next_url}]
    return result


def full_prefetch(**overrides: Any) -> dict[str, Any]:
    prefetch: dict[str, Any] = {
        "patient": patient(),
        "observations": bundle(observation("o1"), observation("o2")),
        "medicationRequests": bundle(med_request("r1")),
    }
    prefetch.update(overrides)
    return prefetch


def hook_request(
    prefetch: Mapping[str, Any] | None,
    *,
    fhir_server: str | None = None,
    token: str | None = None,
    draft_orders: Any = None,
    hook: str = "patient-view",
    **context: Any,
) -> HookRequest:
    payload: dict[str, Any] = {
        "hook": hook,
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/example", "patientId": PATIENT_ID, **context},
    }
    if prefetch is not None:
        payload["prefetch"] = dict(prefetch)
    if fhir_server is not None:
        payload["fhirServer"] = fhir_server
    if token is not None:
        payload["fhirAuthorization"] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds-service",
        }
    if draft_orders is not None:
        payload["context"]["draftOrders"] = draft_orders
    return HookRequest.model_validate(payload)


def run(
    request: HookRequest,
    fhir_client: FhirClient,
    *,
    templates: Mapping[str, str] = TEMPLATES,
    timeout_s: float = 2.0,
    page_cap: int = 20,
    max_entries: int = 1000,
    max_draft_orders: int = 200,
    **options: Any,
) -> GatheredData:
    """``gather`` with these tests' limits; ``options`` are its other keyword arguments."""
    return gather(
        request,
        templates,
        client=fhir_client,
        timeout_s=timeout_s,
        page_cap=page_cap,
        max_entries=max_entries,
        max_draft_orders=max_draft_orders,
        **options,
    )
