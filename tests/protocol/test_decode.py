"""The reduced hook-body decoder: the answers of a full decode, and no field the pipeline reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.patients import NOW as BENCH_NOW
from bench.patients import patient_view_request
from cds_service.protocol import BadRequest, decode_hook_body
from cds_service.protocol._decode import ENTRY_FIELDS, RESOURCE_FIELDS
from cds_service.scenarios import load_scenario

from ..support import LOINC, RXNORM, UCUM, make_service

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "fixtures" / "scenarios").glob("*.json"))
SERVICE_FOR_HOOK = {
    "patient-view": "mg-patient-view",
    "order-select": "mg-order-select",
    "order-sign": "mg-order-sign",
}


def _edge_request() -> dict[str, Any]:
    """Shapes the scenarios rarely carry: outcomes, periods, instants, references, contained."""
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1950-01-01", "gender": "female"}
    observations = [
        {
            "resourceType": "Observation",
            "id": "mg-period",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "19123-9"}]},
            "effectivePeriod": {"start": "2026-11-19T08:00:00Z", "end": "2026-11-19T09:00:00Z"},
            "valueQuantity": {"value": 1.1, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
        },
        {
            "resourceType": "Observation",
            "id": "k-instant",
            "status": "amended",
            "code": {"coding": [{"system": LOINC, "code": "2823-3"}]},
            "effectiveInstant": "2026-11-19T08:00:00Z",
            "valueQuantity": {"value": 3.1, "comparator": "<", "unit": "mmol/L"},
        },
        {
            "resourceType": "Observation",
            "id": "ca-issued",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "17861-6"}]},
            "issued": "2026-11-19T08:00:00Z",
            "valueQuantity": {"value": 7.9, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
        },
    ]
    medication = {
        "resourceType": "Medication",
        "id": "tac",
        "code": {"coding": [{"system": RXNORM, "code": "198377"}]},
    }
    requests = [
        {
            "resourceType": "MedicationRequest",
            "id": "mr-ref",
            "status": "active",
            "intent": "order",
            "medicationReference": {"reference": "Medication/tac"},
            "authoredOn": "2026-01-02",
        },
        {
            "resourceType": "MedicationRequest",
            "id": "mr-contained",
            "status": "active",
            "intent": "order",
            "contained": [
                {
                    "resourceType": "Medication",
                    "id": "dig",
                    "code": {"coding": [{"system": RXNORM, "code": "197604"}]},
                }
            ],
            "medicationReference": {"reference": "#dig"},
        },
    ]
    statements = [
        {
            "resourceType": "MedicationStatement",
            "id": "ms1",
            "status": "active",
            "medicationCodeableConcept": {"text": "omeprazole 20 mg capsule"},
            "effectivePeriod": {"start": "2025-06-01"},
        }
    ]
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "warning", "code": "informational"}],
    }

    def bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources]
            + [{"resource": outcome, "search": {"mode": "outcome"}}],
            "link": [{"relation": "self", "url": "http://fhir.example/Observation"}],
        }

    return {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": {
            "patient": patient,
            "observations": bundle(observations),
            "medicationRequests": bundle([*requests, medication]),
            "medicationStatements": bundle(statements),
        },
    }


def _requests() -> Iterator[tuple[str, dict[str, Any], Any]]:
    for path in SCENARIOS:
        scenario = load_scenario(path, shift=False)
        yield path.stem, scenario.request, scenario.now
    yield "edge-shapes", _edge_request(), BENCH_NOW
    for size in (10, 200):
        yield f"bench-{size}", patient_view_request(size), BENCH_NOW


REQUESTS = list(_requests())


class _Recording(dict[str, Any]):
    """A dict that remembers which of its keys were read."""

    def __init__(self, data: dict[str, Any], seen: set[str]) -> None:
        super().__init__(data)
        self._seen = seen

    def get(self, key: str, default: Any = None) -> Any:
        self._seen.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self._seen.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self._seen.add(key)
        return super().__contains__(key)


def _record(value: Any, resource_keys: set[str], entry_keys: set[str]) -> Any:
    """Wrap every prefetch resource, Bundle and entry so the keys read from them are recorded."""
    if not isinstance(value, dict):
        return value
    wrapped = dict(value)
    entries = wrapped.get("entry")
    if isinstance(entries, list):
        wrapped["entry"] = [
            _Recording(
                {**entry, "resource": _record(entry.get("resource"), resource_keys, entry_keys)},
                entry_keys,
            )
            if isinstance(entry, dict)
            else entry
            for entry in entries
        ]
    return _Recording(wrapped, resource_keys)


def _cards_without_uuids(response: dict[str, Any]) -> list[dict[str, Any]]:
    cards = orjson.loads(orjson.dumps(response))["cards"]
    for card in cards:
        card.pop("uuid", None)
        for suggestion in card.get("suggestions", ()):
            suggestion.pop("uuid", None)
    return cards


@pytest.mark.parametrize(("name", "request_body", "now"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_every_key_the_pipeline_reads_from_prefetch_is_kept(
    name: str, request_body: dict[str, Any], now: Any
) -> None:
    resource_keys: set[str] = set()
    entry_keys: set[str] = set()
    payload = dict(request_body)
    payload["prefetch"] = {
        key: _record(value, resource_keys, entry_keys)
        for key, value in request_body["prefetch"].items()
    }
    service = make_service(clock=lambda: now)
    service.hook(SERVICE_FOR_HOOK[request_body["hook"]], payload)
    assert resource_keys, "the recording saw nothing: the test would pass vacuously"
    assert resource_keys <= RESOURCE_FIELDS, f"read but dropped: {resource_keys - RESOURCE_FIELDS}"
    assert entry_keys <= ENTRY_FIELDS, f"read but dropped: {entry_keys - ENTRY_FIELDS}"


@pytest.mark.parametrize(("name", "request_body", "now"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_reduced_decode_gives_the_same_cards_as_a_full_decode(
    name: str, request_body: dict[str, Any], now: Any
) -> None:
    body = orjson.dumps(request_body)
    service_id = SERVICE_FOR_HOOK[request_body["hook"]]
    service = make_service(clock=lambda: now)
    full = service.hook(service_id, orjson.loads(body))
    reduced = service.hook(service_id, decode_hook_body(body))
    assert _cards_without_uuids(reduced.response) == _cards_without_uuids(full.response)
    assert reduced.evaluation.notes == full.evaluation.notes


def test_the_reduced_decode_drops_what_no_rule_reads() -> None:
    body = orjson.dumps(patient_view_request(10))
    observation = decode_hook_body(body)["prefetch"]["observations"]["entry"][0]["resource"]
    assert set(observation) == {
        "resourceType",
        "id",
        "status",
        "code",
        "effectiveDateTime",
        "issued",
        "valueQuantity",
    }  # meta, category, subject and referenceRange are gone


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[1, 2]", [1, 2]),  # not an object: the envelope check answers, as before
        (b'{"prefetch": {"observations": "none"}}', {"prefetch": {"observations": "none"}}),
        (
            b'{"prefetch": {"o": {"resourceType": "Bundle", "entry": {"a": 1}}}}',
            {"prefetch": {"o": {"resourceType": "Bundle", "entry": {"a": 1}}}},
        ),
        (b'{"prefetch": {"o": {"entry": [3]}}}', {"prefetch": {"o": {"entry": [3]}}}),
        (b'{"prefetch": [1]}', {"prefetch": [1]}),
    ],
    ids=["array-body", "string-prefetch-value", "entry-object", "entry-number", "prefetch-array"],
)
def test_bodies_outside_the_reduced_schema_are_decoded_in_full(body: bytes, expected: Any) -> None:
    assert decode_hook_body(body) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "request body is not valid JSON"),
        (b'{"a": 1} trailing', "request body is not valid JSON"),
        (b'{"a": "\xff"}', "request body is not valid JSON"),
        (b'{"context": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested deeper than 1024 levels"),
    ],
    ids=["malformed", "trailing-content", "invalid-utf8", "too-deep"],
)
def test_invalid_json_is_the_same_400_as_before(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as raised:
        decode_hook_body(body)
    assert message in str(raised.value.outcome())


def test_nesting_deeper_than_the_reduced_decoder_allows_still_decodes() -> None:
    # Between the C decoder's recursion limit and orjson's 1,024 levels: the full decode takes it.
    value = decode_hook_body(b'{"context": ' + b"[" * 1010 + b"]" * 1010 + b"}")["context"]
    depth = 0
    while value:
        value, depth = value[0], depth + 1
    assert value == [] and depth == 1009
