"""Builders shared by the service-level tests: a service with injected fakes, minimal requests."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from cds_service.app import Authenticator, create_app
from cds_service.content import Content, load_content
from cds_service.gathering import FhirFetchError
from cds_service.pipeline import CdsService
from cds_service.settings import Settings
from cds_service.store import Store

from .settings_support import make_settings

REPO = Path(__file__).resolve().parent.parent
CARDS = REPO / "cards"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

_CONTENT: list[Content] = []


def shipped_content() -> Content:
    if not _CONTENT:
        _CONTENT.append(load_content(CARDS))
    return _CONTENT[0]


class RefusingFhirClient:
    """A FHIR client for tests that must not reach a FHIR server."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def get_json(self, url: str, *, bearer: str | None, timeout_s: float) -> Any:
        self.calls.append(url)
        raise FhirFetchError("no FHIR server in this test")


def make_service(
    *,
    store: Store | None = None,
    settings: Settings | None = None,
    clock: Callable[[], datetime] = lambda: NOW,
    fhir_client: Any = None,
) -> CdsService:
    return CdsService(
        settings=settings or make_settings(),
        content=shipped_content(),
        store=store,
        fhir_client=fhir_client or RefusingFhirClient(),
        clock=clock,
    )


def make_client(
    service: CdsService | None = None, *, authenticator: Authenticator | None = None
) -> TestClient:
    return TestClient(create_app(service or make_service(), authenticator=authenticator))


def bundle(*resources: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": dict(r)} for r in resources],
    }


def patient(
    patient_id: str = "pat-1", birth_date: str = "1968-04-12", gender: str = "female"
) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": patient_id, "birthDate": birth_date, "gender": gender}


def magnesium(
    value: float, unit: str = "mg/dL", day: str = "2026-11-19", obs_id: str = "mg-1"
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {
                    "system": LOINC,
                    "code": "19123-9",
                    "display": "Magnesium [Mass/volume] in Serum or Plasma",
                }
            ]
        },
        "subject": {"reference": "Patient/pat-1"},
        "effectiveDateTime": f"{day}T08:00:00Z",
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def medication_request(
    code: str, display: str, *, req_id: str, status: str = "active", intent: str = "order"
) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": req_id,
        "status": status,
        "intent": intent,
        "subject": {"reference": "Patient/pat-1"},
        "authoredOn": "2026-03-01",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": code, "display": display}],
            "text": display,
        },
    }


def hook_request(
    hook: str = "patient-view",
    *,
    observations: list[dict[str, Any]] | None = None,
    medications: list[dict[str, Any]] | None = None,
    drafts: list[dict[str, Any]] | None = None,
    selections: list[str] | None = None,
    prefetch: dict[str, Any] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/example", "patientId": "pat-1"}
    if hook in ("order-select", "order-sign"):
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": d} for d in drafts or []],
        }
    if hook == "order-select":
        context["selections"] = selections or [f"MedicationRequest/{d['id']}" for d in drafts or []]
    return {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": prefetch
        if prefetch is not None
        else {
            "patient": patient(),
            "observations": bundle(*(observations or [])),
            "medicationRequests": bundle(*(medications or [])),
            "medicationStatements": bundle(),
        },
    }


# The interpreter's default. Hypothesis raises the limit while a test runs; the server runs at
# the default, which decides how deep a document msgspec decodes and when a repr overflows.
DEFAULT_RECURSION_LIMIT = 1000


@contextlib.contextmanager
def server_recursion_limit() -> Iterator[None]:
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)
