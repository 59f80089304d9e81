"""The FHIR fallback end to end, against a server with the limits Oracle Health documents.

Oracle Health's R4 API documents no prefetch, so every call goes through the fallback, against a
server that lists no ``MedicationStatement`` (404), caps ``_count`` at 200 (400 with an
OperationOutcome) and cannot sort Observations (``_sort``: 400; they come newest first). Each
fixture scenario is sent through the real app with no prefetch, its patient's data on such a
server (``bench/strict_fhir.py``), and must give the cards it gives with full prefetch; the server
must see one round of refused requests in all, in the first call.

Oracle Health keeps the medications a patient reports as MedicationRequests (intent ``plan``,
category ``community``, ``reportedBoolean``), so the scenarios' MedicationStatements are served
so. A server that simply has none of them is checked too: there, the cards are those of a full
prefetch whose ``medicationStatements`` is empty.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from bench.patients import patient_view_request
from bench.strict_fhir import Logged, StrictFhirServer
from cds_service.gathering import HttpFhirClient
from cds_service.pipeline import CdsService
from cds_service.profile import build_profile_set
from cds_service.scenarios import SCENARIOS_DIR, Scenario, all_scenarios, load_scenario
from cds_service.trust import load_trust_config

from .settings_support import make_settings
from .support import make_client, make_service, shipped_content

SERVICE_FOR_HOOK = {
    "patient-view": "mg-patient-view",
    "order-select": "mg-order-select",
    "order-sign": "mg-order-sign",
}
BUNDLE_KEYS = ("observations", "medicationRequests", "conditions")
COMMUNITY = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"


@functools.cache
def _scenarios() -> tuple[Scenario, ...]:
    return tuple(all_scenarios(shift=False))


def _statements(scenario: Scenario) -> list[dict[str, Any]]:
    value = scenario.request["prefetch"]["medicationStatements"] or {}
    return [entry["resource"] for entry in value.get("entry", [])]


def _as_reported_order(statement: Mapping[str, Any]) -> dict[str, Any]:
    """A MedicationStatement as Oracle Health keeps what a patient reports taking."""
    period = statement.get("effectivePeriod") or {}
    order: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": statement["id"],
        "status": statement["status"],
        "intent": "plan",
        "reportedBoolean": True,
        "category": [{"coding": [{"system": COMMUNITY, "code": "community"}]}],
        "subject": statement["subject"],
    }
    for field in ("medicationCodeableConcept", "medicationReference", "contained"):
        if field in statement:
            order[field] = statement[field]
    when = (
        statement.get("effectiveDateTime") or period.get("start") or statement.get("dateAsserted")
    )
    if when:
        order["authoredOn"] = when
    if "dosage" in statement:
        order["dosageInstruction"] = statement["dosage"]
    return order


def _chart(scenario: Scenario, *, statements_as_orders: bool) -> list[dict[str, Any]]:
    """The patient's resources on the server: what the prefetch holds, Medications included."""
    prefetch = scenario.request["prefetch"]
    resources = [prefetch["patient"]]
    for key in BUNDLE_KEYS:
        resources += [entry["resource"] for entry in prefetch[key].get("entry", [])]
    if statements_as_orders:
        resources += [_as_reported_order(s) for s in _statements(scenario)]
    return resources


def _without_prefetch(request: Mapping[str, Any], fhir_server: str) -> dict[str, Any]:
    bare = copy.deepcopy(dict(request))
    del bare["prefetch"]
    bare["fhirServer"] = fhir_server
    return bare


def _cards(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The cards without their uuids (new for every answer)."""
    cards = copy.deepcopy(body["cards"])
    for card in cards:
        card.pop("uuid", None)
        for suggestion in card.get("suggestions", ()):
            suggestion.pop("uuid", None)
    return cards


def _client(now: datetime) -> TestClient:
    return make_client(make_service(fhir_client=HttpFhirClient(), clock=lambda: now))


def _call(client: TestClient, request: Mapping[str, Any]) -> Any:
    return client.post(f"/cds-services/{SERVICE_FOR_HOOK[request['hook']]}", json=request)


def _refused(call: Sequence[Logged]) -> list[tuple[str, int, str | None, str | None]]:
    return sorted(
        (entry.resource_type, entry.status, entry.param("_count"), entry.param("_sort"))
        for entry in call
        if entry.status != 200
    )


@pytest.fixture(scope="module")
def oracle() -> Iterator[StrictFhirServer]:
    server = StrictFhirServer()
    for scenario in _scenarios():
        server.add(_chart(scenario, statements_as_orders=True))
    with server.running():
        yield server


def test_every_scenario_without_prefetch_gives_the_cards_of_full_prefetch(
    oracle: StrictFhirServer,
) -> None:
    scenarios = _scenarios()
    assert len({s.now for s in scenarios}) == 1  # one service, one clock
    client = _client(scenarios[0].now)
    calls: list[list[Logged]] = []
    mismatches: list[str] = []
    for scenario in scenarios:
        full = _call(client, scenario.request)
        assert full.status_code == 200, scenario.name
        logged = len(oracle.log)
        bare = _call(client, _without_prefetch(scenario.request, oracle.base))
        calls.append(oracle.log[logged:])
        if bare.status_code != 200:
            mismatches.append(f"{scenario.name}: HTTP {bare.status_code} {bare.text}")
        elif _cards(bare.json()) != _cards(full.json()):
            shown = [card["summary"] for card in bare.json()["cards"]]
            wanted = [card["summary"] for card in full.json()["cards"]]
            mismatches.append(f"{scenario.name}: {shown} instead of {wanted}")
    assert not mismatches, "\n".join(mismatches)
    assert len(calls) == len(scenarios) >= 100

    # One round of refusals for the server, all in the first call: then it is asked right.
    assert _refused(calls[0]) == [
        ("MedicationStatement", 404, None, None),
        ("Observation", 400, "1000", "-date"),
        ("Observation", 400, "200", "-date"),
    ]
    assert [call for call in calls[1:] if _refused(call)] == []
    later = [entry for call in calls[1:] for entry in call]
    observation_searches = {
        (entry.param("_count"), entry.param("_sort"))
        for entry in later
        if entry.resource_type == "Observation"
    }
    assert observation_searches == {("200", None)}
    assert not [entry for entry in later if entry.resource_type == "MedicationStatement"]
    # Every call asked for its patient's Patient, Observations, orders and Conditions.
    assert all(
        {"Patient", "Observation", "MedicationRequest", "Condition"}
        <= {entry.resource_type for entry in call}
        for call in calls
    )


def test_a_server_without_statements_gives_the_cards_of_a_prefetch_without_them() -> None:
    with_statements = [s for s in _scenarios() if _statements(s)]
    assert len(with_statements) >= 5
    server = StrictFhirServer()
    for scenario in with_statements:
        server.add(_chart(scenario, statements_as_orders=False))
    client = _client(with_statements[0].now)
    mismatches = []
    with server.running():
        for scenario in with_statements:
            emptied = copy.deepcopy(scenario.request)
            emptied["prefetch"]["medicationStatements"] = {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": 0,
            }
            full = _call(client, emptied)
            bare = _call(client, _without_prefetch(scenario.request, server.base))
            assert bare.status_code == 200, (scenario.name, bare.text)
            if _cards(bare.json()) != _cards(full.json()):
                mismatches.append(scenario.name)
    assert mismatches == []


def test_a_long_history_is_paged_at_the_servers_page_size() -> None:
    """600 results over two years (540 of them asked for): three pages of at most 200."""
    now = _scenarios()[0].now
    request = patient_view_request(600, now=now)
    server = StrictFhirServer()
    prefetch = request["prefetch"]
    server.add([prefetch["patient"]])
    for key in ("observations", "medicationRequests"):
        server.add(entry["resource"] for entry in prefetch[key]["entry"])
    client = _client(now)
    with server.running():
        full = _call(client, request)
        bare = _call(client, _without_prefetch(request, server.base))
    assert bare.status_code == 200 and full.status_code == 200
    assert _cards(bare.json()) == _cards(full.json())
    searches = [
        (entry.status, entry.param("_count"), entry.param("_sort"), entry.param("_offset"))
        for entry in server.log
        if entry.resource_type == "Observation"
    ]
    assert searches == [
        (400, "1000", "-date", None),
        (400, "200", "-date", None),
        (200, "200", None, None),
        (200, "200", None, "200"),
        (200, "200", None, "400"),
    ]


# --- metrics -------------------------------------------------------------------------------------

Sample = tuple[str, tuple[tuple[str, str], ...]]


def _samples(text: str) -> dict[Sample, float]:
    """Every cds_* sample but the ``_created`` timestamps (when a series first appeared)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("cds_") and not sample.name.endswith("_created")
    }


def _changes(client: TestClient, request: Mapping[str, Any]) -> tuple[dict[Sample, float], Any]:
    before = _samples(client.get("/metrics").text)
    response = _call(client, request)
    after = _samples(client.get("/metrics").text)
    changed = {
        sample: round(value - before.get(sample, 0.0), 9)
        for sample, value in after.items()
        if value != before.get(sample, 0.0)
    }
    return changed, response


def _s(name: str, **labels: str) -> Sample:
    return name, tuple(sorted(labels.items()))


def _latency(changed: Mapping[Sample, float], service: str) -> dict[Sample, float]:
    """The one latency observation: its count, its sum (as measured) and the buckets it fills."""
    seconds = changed[_s("cds_request_seconds_sum", service=service)]
    assert 0 < seconds < 10
    buckets = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
    filled = {
        _s("cds_request_seconds_bucket", le=str(le), service=service): 1.0
        for le in buckets
        if seconds <= le
    }
    return {
        **filled,
        _s("cds_request_seconds_bucket", le="+Inf", service=service): 1.0,
        _s("cds_request_seconds_count", service=service): 1.0,
        _s("cds_request_seconds_sum", service=service): seconds,
    }


def test_the_metrics_of_calls_without_prefetch_count_each_thing_once() -> None:
    scenario = load_scenario(
        SCENARIOS_DIR / "envarsus-first-year-last-mg-50-days.json", shift=False
    )
    server = StrictFhirServer()
    server.add(_chart(scenario, statements_as_orders=True))
    client = _client(scenario.now)
    request = _without_prefetch(scenario.request, server.base)
    service = "mg-patient-view"
    keys = ("patient", "observations", "medicationRequests", "medicationStatements", "conditions")
    misses = {_s("cds_prefetch_total", key=key, outcome="miss"): 1.0 for key in keys}
    answered = {
        _s("cds_cards_total", indicator="info", topic="mg-monitoring-gap"): 1.0,
        _s("cds_responses_total", service=service, status="200"): 1.0,
    }
    with server.running():
        first, response = _changes(client, request)
        assert response.status_code == 200, response.text
        second, response = _changes(client, request)
        assert response.status_code == 200, response.text
    # Patient, Observations, MedicationRequests, Conditions and the referenced Medication.
    assert first == {
        **misses,
        _s("cds_fhir_fallback_total", outcome="ok"): 5.0,
        _s("cds_fhir_fallback_total", outcome="unsupported"): 1.0,
        _s("cds_fhir_adaptations_total", kind="page_size", resource="Observation"): 1.0,
        _s("cds_fhir_adaptations_total", kind="sort", resource="Observation"): 1.0,
        _s(
            "cds_fhir_adaptations_total", kind="unsupported_type", resource="MedicationStatement"
        ): 1.0,
        _s("cds_fhir_unsupported_total", known_from="server", resource="MedicationStatement"): 1.0,
        **answered,
        **_latency(first, service),
    }
    assert second == {
        **misses,
        _s("cds_fhir_fallback_total", outcome="ok"): 5.0,
        _s("cds_fhir_unsupported_total", known_from="memory", resource="MedicationStatement"): 1.0,
        **answered,
        **_latency(second, service),
    }


def test_a_required_key_the_server_cannot_give_is_a_412_naming_it() -> None:
    scenario = load_scenario(
        SCENARIOS_DIR / "envarsus-first-year-last-mg-50-days.json", shift=False
    )
    server = StrictFhirServer()
    server.add(
        r for r in _chart(scenario, statements_as_orders=True) if r["resourceType"] != "Patient"
    )
    client = _client(scenario.now)
    with server.running():
        response = _call(client, _without_prefetch(scenario.request, server.base))
    assert response.status_code == 412
    assert response.json() == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "not-found",
                "diagnostics": "FHIR server failed: patient",
                "expression": ["prefetch.patient"],
            }
        ],
    }


def test_with_the_oracle_health_profile_values_the_server_is_never_refused(
    tmp_path: Path,
) -> None:
    """A profile that says what the server lacks (page size 200, no _sort, no
    MedicationStatement) spares even the first call its round of refusals."""
    trust_file = tmp_path / "trust.yaml"
    trust_file.write_text(
        "default_profile:\n"
        "  page_size: 200\n"
        "  sort: false\n"
        "  skip_resources: [MedicationStatement]\n"
    )
    config = load_trust_config(trust_file, require_clients=False)  # authentication off
    profiles = build_profile_set(shipped_content(), default=config.default_profile)
    scenarios = [s for s in _scenarios() if s.request["hook"] == "patient-view"][:20]
    now = scenarios[0].now
    service = CdsService(
        settings=make_settings(),
        profiles=profiles,
        store=None,
        fhir_client=HttpFhirClient(),
        clock=lambda: now,
    )
    client = make_client(service)
    server = StrictFhirServer()
    for scenario in scenarios:
        server.add(_chart(scenario, statements_as_orders=True))
    mismatches = []
    with server.running():
        for scenario in scenarios:
            full = _call(client, scenario.request)
            bare = _call(client, _without_prefetch(scenario.request, server.base))
            assert bare.status_code == 200, (scenario.name, bare.text)
            if _cards(bare.json()) != _cards(full.json()):
                mismatches.append(scenario.name)
    assert mismatches == []
    assert _refused(server.log) == []
    assert {
        (entry.param("_count"), entry.param("_sort"))
        for entry in server.log
        if entry.resource_type == "Observation"
    } == {("200", None)}
    assert not [entry for entry in server.log if entry.resource_type == "MedicationStatement"]
