"""The HTTP contract: discovery, hook calls, every error status, CORS, health and metrics."""

from __future__ import annotations

import gc
import re
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from bench.patients import patient_view_request
from cds_service.app import create_app
from cds_service.content import load_content
from cds_service.trust import AuthenticationFailed

from .settings_support import make_settings
from .support import (
    CARDS,
    hook_request,
    magnesium,
    make_client,
    make_service,
    medication_request,
)

SERVICE_FOR = {
    "patient-view": "mg-patient-view",
    "order-select": "mg-order-select",
    "order-sign": "mg-order-sign",
}


def _issue(body: dict[str, Any]) -> dict[str, Any]:
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]  # type: ignore[no-any-return]


# -- discovery -----------------------------------------------------------------------------------


def test_discovery_lists_three_services_with_targeted_prefetch() -> None:
    response = make_client().get("/cds-services")
    assert response.status_code == 200
    services = {s["id"]: s for s in response.json()["services"]}
    assert {sid: s["hook"] for sid, s in services.items()} == {
        "mg-patient-view": "patient-view",
        "mg-order-select": "order-select",
        "mg-order-sign": "order-sign",
    }
    content = load_content(CARDS)
    every_code = {code for analyte in content.analytes.values() for code in analyte.codes}
    for service in services.values():
        assert service["title"] and len(service["description"]) > 40
        prefetch = service["prefetch"]
        assert prefetch["patient"] == "Patient/{{context.patientId}}"
        assert prefetch["medicationRequests"].startswith(
            "MedicationRequest?patient={{context.patientId}}&status=active"
        )
        observation_codes = set(re.findall(r"http://loinc.org\|([\d-]+)", prefetch["observations"]))
        assert observation_codes == every_code
        for template in prefetch.values():
            # only the 2.0.1 context tokens, never date tokens
            assert set(re.findall(r"{{([^}]+)}}", template)) <= {"context.patientId"}


# -- hooks: happy paths --------------------------------------------------------------------------


def test_patient_view_returns_the_critical_magnesium_card() -> None:
    response = make_client().post(
        "/cds-services/mg-patient-view", json=hook_request(observations=[magnesium(1.1)])
    )
    assert response.status_code == 200
    (card,) = response.json()["cards"]
    assert card["indicator"] == "critical"
    assert card["source"]["topic"] == {
        "system": "urn:cds-service:topic",
        "code": "hypomagnesemia",
        "display": "Low serum magnesium",
    }
    assert card["summary"].startswith("Mg 1.1 mg/dL on 2026-11-19 is critically low")
    assert len(card["summary"]) <= 139
    assert "| Magnesium | 1.1 mg/dL (0.45 mmol/L) | 2026-11-19 |" in card["detail"]


def test_order_select_antacid_against_active_tacrolimus() -> None:
    request = hook_request(
        "order-select",
        medications=[medication_request("198377", "Tacrolimus 1 MG Oral Capsule", req_id="tac")],
        drafts=[
            medication_request(
                "237872",
                "Aluminum Hydroxide 200 MG / Magnesium Hydroxide 200 MG Chewable Tablet",
                req_id="antacid",
                status="draft",
            )
        ],
        observations=[magnesium(2.0)],
    )
    response = make_client().post("/cds-services/mg-order-select", json=request)
    assert response.status_code == 200
    cards = response.json()["cards"]
    assert [(c["source"]["topic"]["code"], c["indicator"]) for c in cards] == [
        ("antacid-tacrolimus", "warning")
    ]
    suggestion = cards[0]["suggestions"][0]
    resource = suggestion["actions"][0]["resource"]
    assert resource["resourceType"] == "ServiceRequest"
    assert resource["code"]["coding"][0]["code"] == "11253-2"
    assert cards[0]["selectionBehavior"] == "any"


def test_order_sign_with_no_relevant_data_returns_no_cards() -> None:
    request = hook_request(
        "order-sign",
        drafts=[
            medication_request(
                "197604", "Digoxin 0.125 MG Oral Tablet", req_id="d1", status="draft"
            )
        ],
    )
    response = make_client().post("/cds-services/mg-order-sign", json=request)
    assert response.status_code == 200
    assert response.json() == {"cards": []}


def test_sandbox_draft_without_medication_or_intent_answers_no_cards() -> None:
    request = hook_request("order-select", observations=[magnesium(2.1)])
    request["context"]["draftOrders"] = {
        "resourceType": "Bundle",
        "entry": [
            {
                "resource": {
                    "resourceType": "MedicationRequest",
                    "id": "new-1",
                    "status": "draft",
                    "subject": {"reference": "Patient/pat-1"},
                    "category": {"text": "outpatient"},
                    "reasonCode": {"text": "x"},
                }
            }
        ],
    }
    request["context"]["selections"] = ["MedicationRequest/new-1"]
    response = make_client().post("/cds-services/mg-order-select", json=request)
    assert response.status_code == 200
    assert response.json() == {"cards": []}


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "expression"),
    [
        (lambda r: r.pop("hookInstance"), "hookInstance"),
        (lambda r: r.pop("context"), "context"),
        (lambda r: r.update(context="patient"), "context"),
        (lambda r: r.update(hook=12), "hook"),
        (lambda r: r.update(hook="order-sign"), "hook"),
        (lambda r: r["context"].pop("patientId"), "context.patientId"),
        (lambda r: r["context"].update(patientId=42), "context.patientId"),
        (lambda r: r.update(prefetch=["not", "an", "object"]), "prefetch"),
        (lambda r: r.update(fhirServer="ftp://x"), "fhirServer"),
        (
            lambda r: r.update(fhirAuthorization={"token_type": "Bearer"}),
            "fhirAuthorization.access_token",
        ),
    ],
)
def test_malformed_requests_get_400_naming_the_field(mutate: Any, expression: str) -> None:
    request = hook_request(observations=[magnesium(1.1)])
    mutate(request)
    response = make_client().post("/cds-services/mg-patient-view", json=request)
    assert response.status_code == 400
    issue = _issue(response.json())
    assert issue["expression"] == [expression]


def test_order_select_needs_selections_and_draft_orders() -> None:
    request = hook_request("order-select")
    del request["context"]["selections"]
    response = make_client().post("/cds-services/mg-order-select", json=request)
    assert response.status_code == 400
    assert _issue(response.json())["expression"] == ["context.selections"]
    request = hook_request("order-sign")
    request["context"]["draftOrders"] = "none"
    response = make_client().post("/cds-services/mg-order-sign", json=request)
    assert response.status_code == 400
    assert _issue(response.json())["expression"] == ["context.draftOrders"]


@pytest.mark.parametrize("body", [b"{not json", b"", b"[]", b'"text"', b"null"])
def test_invalid_json_bodies_get_400(body: bytes) -> None:
    response = make_client().post(
        "/cds-services/mg-patient-view", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert _issue(response.json())["severity"] == "error"


def test_deeply_nested_json_gets_400() -> None:
    nested = "[" * 2000 + "]" * 2000
    body = '{"hook": "patient-view", "hookInstance": "x", "context": {"deep": ' + nested + "}}"
    response = make_client().post("/cds-services/mg-patient-view", content=body.encode())
    assert response.status_code == 400
    assert "nested deeper" in _issue(response.json())["diagnostics"]


def test_unknown_service_is_404_and_wrong_method_is_405() -> None:
    client = make_client()
    response = client.post("/cds-services/no-such-service", json=hook_request())
    assert response.status_code == 404
    assert _issue(response.json())["code"] == "not-found"
    response = client.get("/cds-services/mg-patient-view")
    assert response.status_code == 405
    assert _issue(response.json())["code"] == "not-supported"


def test_oversize_body_is_413() -> None:
    settings = make_settings(max_body_mb=0.001)
    client = make_client(make_service(settings=settings))
    response = client.post("/cds-services/mg-patient-view", content=b"{" + b" " * 5000 + b"}")
    assert response.status_code == 413
    assert _issue(response.json())["code"] == "too-costly"


def test_missing_prefetch_without_fhir_server_is_412_naming_the_keys() -> None:
    request = hook_request()
    del request["prefetch"]
    response = make_client().post("/cds-services/mg-patient-view", json=request)
    assert response.status_code == 412
    expressions = {e for issue in response.json()["issue"] for e in issue.get("expression", [])}
    assert expressions == {
        "prefetch.patient",
        "prefetch.observations",
        "prefetch.medicationRequests",
        "prefetch.medicationStatements",
    }


def test_operation_outcome_prefetch_is_412() -> None:
    request = hook_request()
    request["prefetch"]["observations"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout", "diagnostics": "search timed out"}],
    }
    response = make_client().post("/cds-services/mg-patient-view", json=request)
    assert response.status_code == 412
    expressions = {e for issue in response.json()["issue"] for e in issue.get("expression", [])}
    assert expressions == {"prefetch.observations"}


def test_null_prefetch_means_no_data() -> None:
    request = hook_request()
    request["prefetch"].update(
        observations=None, medicationRequests=None, medicationStatements=None
    )
    response = make_client().post("/cds-services/mg-patient-view", json=request)
    assert response.status_code == 200
    assert response.json() == {"cards": []}


# -- CORS, health, metrics -----------------------------------------------------------------------


def test_cors_preflight_needs_no_token_even_with_auth_on() -> None:
    def reject_everything(header: str | None, audience: str) -> None:
        raise AuthenticationFailed("missing-token")

    settings = make_settings(cors_origins="https://ehr.example.org")
    client = make_client(make_service(settings=settings), authenticator=reject_everything)
    response = client.options(
        "/cds-services/mg-patient-view",
        headers={
            "Origin": "https://ehr.example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://ehr.example.org"
    assert client.get("/cds-services").status_code == 401
    other = client.options(
        "/cds-services",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in other.headers


def test_auth_off_allows_any_origin_and_says_so_in_readyz() -> None:
    client = make_client()
    response = client.get("/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert response.headers["access-control-allow-origin"] == "*"
    ready = client.get("/readyz").json()
    assert ready["auth"] == "off" and "development only" in ready["warning"]
    assert client.get("/healthz").json() == {"status": "ok"}


def test_metrics_count_requests_cards_and_prefetch() -> None:
    client = make_client()
    client.post("/cds-services/mg-patient-view", json=hook_request(observations=[magnesium(1.4)]))
    text = client.get("/metrics").text
    assert 'cds_request_seconds_bucket{le="0.001",service="mg-patient-view"}' in text
    assert re.search(r'cds_cards_total{indicator="warning",topic="hypomagnesemia"} [1-9]', text)
    assert re.search(r'cds_prefetch_total{key="observations",outcome="hit"} [1-9]', text)
    assert 'cds_responses_total{service="mg-patient-view",status="200"}' in text


def test_unrecognised_unit_is_not_used_and_is_counted() -> None:
    client = make_client()
    odd = magnesium(0.9, unit="mg%", obs_id="mg-odd")
    response = client.post("/cds-services/mg-patient-view", json=hook_request(observations=[odd]))
    assert response.json() == {"cards": []}
    assert re.search(
        r'cds_unrecognised_units_total{analyte="magnesium"} [1-9]', client.get("/metrics").text
    )


def test_start_up_freezes_the_heap_and_keeps_collections_out_of_requests() -> None:
    threshold = gc.get_threshold()
    gc.set_threshold(700, *threshold[1:])  # CPython's default, whatever earlier tests left
    body = orjson.dumps(patient_view_request(200))
    try:
        with TestClient(create_app(make_service())) as client:
            assert gc.get_freeze_count() > 0
            assert gc.get_threshold()[1:] == threshold[1:]
            gc.collect()  # the count of new objects starts from zero, as after start-up
            before = [generation["collections"] for generation in gc.get_stats()]
            response = client.post(
                "/cds-services/mg-patient-view",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            after = [generation["collections"] for generation in gc.get_stats()]
            assert response.status_code == 200 and response.json()["cards"]
            # A 200-Observation request (about 190 KiB) ran without one cyclic collection;
            # under CPython's default threshold it takes several.
            assert after == before
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
