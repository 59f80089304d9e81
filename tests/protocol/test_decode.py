"""The hook-body decoder: prefetch as ``Resource`` models, with the answers of a generic decode."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given

from bench.patients import NOW as BENCH_NOW
from bench.patients import patient_view_request
from cds_service.protocol import (
    BadRequest,
    Resource,
    ServiceError,
    as_resource,
    decode_hook_body,
    decode_json,
)
from cds_service.scenarios import load_scenario

from ..support import LOINC, RXNORM, UCUM, make_service, server_recursion_limit
from ..test_fuzz import BASES, FUZZ, mutated_bodies

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


def _cards_without_uuids(response: dict[str, Any]) -> list[dict[str, Any]]:
    cards = orjson.loads(orjson.dumps(response))["cards"]
    for card in cards:
        card.pop("uuid", None)
        for suggestion in card.get("suggestions", ()):
            suggestion.pop("uuid", None)
    return cards


@pytest.mark.parametrize(("name", "request_body", "now"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_model_decode_gives_the_same_cards_as_a_generic_decode(
    name: str, request_body: dict[str, Any], now: Any
) -> None:
    body = orjson.dumps(request_body)
    service_id = SERVICE_FOR_HOOK[request_body["hook"]]
    service = make_service(clock=lambda: now)
    full = service.hook(service_id, orjson.loads(body))
    reduced = service.hook(service_id, decode_hook_body(body))
    assert _cards_without_uuids(reduced.response) == _cards_without_uuids(full.response)
    assert reduced.evaluation.notes == full.evaluation.notes


def test_the_decoder_keeps_every_member_the_model_declares_and_nothing_else() -> None:
    request = patient_view_request(10)
    body = orjson.dumps(request)
    sent = request["prefetch"]["observations"]["entry"][1]["resource"]
    observation = decode_hook_body(body)["prefetch"]["observations"].entry[1].resource
    assert isinstance(observation, Resource)
    declared = set(Resource.__struct_fields__)
    kept = {name for name in declared if getattr(observation, name) is not None}
    assert kept == set(sent) & declared
    assert set(sent) - declared == {"meta", "category", "referenceRange"}  # skipped
    # Every kept member decoded as the converter reads it, numbers as the lab wrote them: the
    # decoder keeps decimals exactly ("1.20" stays "1.20"), so the converter is given the same.
    exact = json.loads(orjson.dumps(sent), parse_float=Decimal)
    assert observation == as_resource(exact)
    assert observation.code.coding[0].code == "2601-3"  # type: ignore[union-attr,index]
    assert observation.valueQuantity.value == Decimal(  # type: ignore[union-attr]
        str(sent["valueQuantity"]["value"])
    )


def _envelope(prefetch: Any) -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": prefetch,
    }


def _observations(*resources: Any) -> dict[str, Any]:
    return {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}


def _mg(**changes: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Observation",
        "id": "mg",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "19123-9"}]},
        "effectiveDateTime": "2026-11-19T08:00:00Z",
        "valueQuantity": {"value": 1.1, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
    }
    return {**resource, **changes}


_PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1950-01-01"}
_ODD_PREFETCH = {
    "prefetch-value-string": {"patient": _PATIENT, "observations": "none"},
    "entry-object": {"patient": _PATIENT, "observations": {"resourceType": "Bundle", "entry": {}}},
    "entry-items-junk": {"patient": _PATIENT, "observations": {"entry": [3, "x", [], None]}},
    "resource-not-object": {"patient": _PATIENT, "observations": _observations(7, [1], _mg())},
    "code-array": {"patient": _PATIENT, "observations": _observations(_mg(code=[1]), _mg(id="b"))},
    "coding-object": {"patient": _PATIENT, "observations": _observations(_mg(code={"coding": {}}))},
    "coding-items-junk": {
        "patient": _PATIENT,
        "observations": _observations(
            _mg(code={"coding": [5, [], {"system": LOINC, "code": "19123-9"}]})
        ),
    },
    "value-quantity-string": {
        "patient": _PATIENT,
        "observations": _observations(_mg(valueQuantity="1.1 mg/dL")),
    },
    "value-not-number": {
        "patient": _PATIENT,
        "observations": _observations(_mg(valueQuantity={"value": True, "unit": "mg/dL"})),
    },
    "period-array": {
        "patient": _PATIENT,
        "observations": _observations(_mg(effectiveDateTime=None, effectivePeriod=["x"])),
    },
    "medication-junk": {
        "patient": _PATIENT,
        "observations": _observations(_mg()),
        "medicationRequests": _observations(
            {
                "resourceType": "MedicationRequest",
                "id": "m1",
                "status": "active",
                "medicationCodeableConcept": ["tacrolimus"],
                "medicationReference": "Medication/x",
                "contained": "none",
            },
            {
                "resourceType": "MedicationRequest",
                "id": "m2",
                "status": "active",
                "medicationReference": {"reference": "#c", "display": 5},
                "contained": [1, {"resourceType": "Medication", "id": "c", "ingredient": [2, {}]}],
            },
        ),
    },
    "patient-array": {"patient": [_PATIENT]},
    "outcome-issue-junk": {
        "patient": _PATIENT,
        "observations": {"resourceType": "OperationOutcome", "issue": {"severity": "error"}},
    },
}


def _answer(service_id: str, payload: Any, now: Any) -> Any:
    try:
        result = make_service(clock=lambda: now).hook(service_id, payload)
    except ServiceError as error:
        return error.status, error.outcome()
    return _cards_without_uuids(result.response), result.evaluation.notes


@pytest.mark.parametrize("prefetch", list(_ODD_PREFETCH.values()), ids=list(_ODD_PREFETCH))
def test_odd_shapes_get_the_same_answer_from_both_decoders(prefetch: Any) -> None:
    # The models type every member as "the model, or whatever JSON was sent": odd values decode,
    # and the readers skip them exactly as they do when the generic path decoded the body.
    body = orjson.dumps(_envelope(prefetch))
    expected = _answer("mg-patient-view", orjson.loads(body), BENCH_NOW)
    assert _answer("mg-patient-view", decode_hook_body(body), BENCH_NOW) == expected


_BEYOND_64_BITS = re.compile(rb"\d{20,}")
_ORJSON_LIMITS = ("infinity when parsed as double",)


def _answer_to_body(service_id: str, body: bytes, decode: Any) -> Any:
    try:
        payload = decode(body)
    except ServiceError as error:
        return error.status, error.outcome()
    return _answer(service_id, payload, BENCH_NOW)


@pytest.mark.parametrize("service_id", sorted(BASES))
def test_mutated_requests_get_the_same_answer_from_both_decoders(service_id: str) -> None:
    # The fuzzer's mutations (wrong types at any depth, duplicate keys, deep nesting, junk
    # bytes) on valid requests: the two decoders disagree only where the module says they may.
    @FUZZ
    @given(body=mutated_bodies(BASES[service_id]))
    def run(body: bytes) -> None:
        if _BEYOND_64_BITS.search(body):
            # msgspec keeps such an integer exact, orjson makes it a float: the readers see the
            # same number, but the envelope's pydantic fields (expires_in) accept only the int.
            return
        expected = _answer_to_body(service_id, body, decode_json)
        # At the server's recursion limit, which stops msgspec before orjson's 1,024 levels:
        # deeper bodies fall back to the generic path and get its 400.
        with server_recursion_limit():
            answer = _answer_to_body(service_id, body, decode_hook_body)
        if any(limit in str(expected) for limit in _ORJSON_LIMITS):
            # A number past a double's range in a member no reader reads: valid JSON that
            # msgspec skips and orjson refuses.
            return
        if expected[0] == answer[0] == 412:
            # Which keys a 412 names depends on which fetches failed before gathering stopped
            # waiting (it stops at the first failure); tests/gathering checks what it lists.
            return
        assert answer == expected

    run()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[1, 2]", [1, 2]),  # not an object: the envelope check answers, as before
        (b'{"prefetch": [1]}', {"prefetch": [1]}),
    ],
    ids=["array-body", "prefetch-array"],
)
def test_bodies_outside_the_schema_are_decoded_in_full(body: bytes, expected: Any) -> None:
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
