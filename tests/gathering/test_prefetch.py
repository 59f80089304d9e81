"""Prefetch as sent: no HTTP call, null as no data, outcomes and junk as unavailable."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cds_service.gathering import RequestsFhirClient
from cds_service.metrics import REGISTRY
from cds_service.protocol import DataUnavailable, as_resource, decode_hook_body, parse_hook_request

from .support import (
    PATIENT_ID,
    FakeFhirServer,
    bundle,
    full_prefetch,
    hook_request,
    med_request,
    observation,
    outcome,
    patient,
    run,
)


def _expressions(error: DataUnavailable) -> set[str]:
    return {issue.expression for issue in error.issues if issue.expression}


def test_full_prefetch_makes_no_http_call(fhir: FakeFhirServer, client: RequestsFhirClient) -> None:
    prefetch = full_prefetch()
    data = run(hook_request(prefetch, fhir_server=fhir.base, token="t"), client)
    assert fhir.seen == []
    assert dict(data.sources) == dict.fromkeys(prefetch, "prefetch")
    assert [r.id for r in data.resources["observations"]] == ["o1", "o2"]
    assert [r.id for r in data.resources["patient"]] == [patient()["id"]]
    assert data.notes == ()


def test_prefetch_resources_are_the_decoded_models_not_copies(client: RequestsFhirClient) -> None:
    body = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/example", "patientId": PATIENT_ID},
        "prefetch": full_prefetch(),
    }
    request = parse_hook_request(decode_hook_body(orjson.dumps(body)), expected_hook="patient-view")
    data = run(request, client)
    sent = request.prefetch
    assert sent is not None
    assert data.resources["observations"][0] is sent["observations"].entry[0].resource
    assert data.resources["patient"][0] is sent["patient"]


def test_plain_json_prefetch_is_read_as_the_same_models(client: RequestsFhirClient) -> None:
    # A request decoded by the generic path (the CLI, a body the reduced decoder refuses).
    prefetch = full_prefetch()
    data = run(hook_request(prefetch), client)
    assert data.resources["patient"] == [as_resource(prefetch["patient"])]
    assert data.resources["observations"] == [
        as_resource(entry["resource"]) for entry in prefetch["observations"]["entry"]
    ]


def test_outcome_entries_are_skipped(client: RequestsFhirClient) -> None:
    observations = bundle(observation("o1"))
    observations["entry"].append(
        {"resource": outcome("informational", "warning"), "search": {"mode": "outcome"}}
    )
    observations["entry"].append({"resource": observation("o9"), "search": {"mode": "outcome"}})
    data = run(hook_request(full_prefetch(observations=observations)), client)
    assert [r.id for r in data.resources["observations"]] == ["o1"]


def test_null_key_means_no_data(client: RequestsFhirClient) -> None:
    data = run(hook_request(full_prefetch(observations=None)), client)
    assert data.resources["observations"] == []
    assert data.sources["observations"] == "null"


def test_bundle_without_entry_is_empty(client: RequestsFhirClient) -> None:
    empty = {"resourceType": "Bundle", "type": "searchset", "total": 0}
    data = run(hook_request(full_prefetch(observations=empty)), client)
    assert data.resources["observations"] == []
    assert data.sources["observations"] == "prefetch"


@pytest.mark.parametrize(
    "value",
    [
        outcome(),
        outcome("informational", "information"),  # a bare outcome is never data
        bundle(outcome()),
        bundle(outcome("exception", "fatal")),
        {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "OperationOutcome"}}]},
    ],
)
def test_operation_outcome_key_is_unavailable(value: Any, client: RequestsFhirClient) -> None:
    with pytest.raises(DataUnavailable) as raised:
        run(hook_request(full_prefetch(observations=value)), client)
    assert raised.value.missing == ["observations"]
    assert raised.value.status == 412
    assert _expressions(raised.value) == {"prefetch.observations"}
    assert "prefetch returned an OperationOutcome" in str(raised.value)


def test_bundle_with_only_a_warning_outcome_is_empty_data(client: RequestsFhirClient) -> None:
    value = bundle(outcome("informational", "warning"))
    data = run(hook_request(full_prefetch(observations=value)), client)
    assert data.resources["observations"] == []


def test_error_outcome_beside_data_keeps_the_data_with_a_note(client: RequestsFhirClient) -> None:
    value = bundle(observation("o1"), outcome())
    data = run(hook_request(full_prefetch(observations=value)), client)
    assert [r.id for r in data.resources["observations"]] == ["o1"]
    assert any("OperationOutcome" in note for note in data.notes)


def test_absent_keys_without_fhir_server_are_all_named(client: RequestsFhirClient) -> None:
    with pytest.raises(DataUnavailable) as raised:
        run(hook_request(None), client)
    assert raised.value.missing == ["patient", "observations", "medicationRequests"]
    assert "no prefetch and no fhirServer" in str(raised.value)


def test_mixed_reasons_name_each_key_with_its_own(client: RequestsFhirClient) -> None:
    prefetch = {"patient": patient(), "observations": outcome()}
    with pytest.raises(DataUnavailable) as raised:
        run(hook_request(prefetch), client)
    diagnostics = {issue.expression: issue.diagnostics for issue in raised.value.issues}
    assert diagnostics == {
        "prefetch.observations": "prefetch returned an OperationOutcome: observations",
        "prefetch.medicationRequests": "no prefetch and no fhirServer: medicationRequests",
    }


@pytest.mark.parametrize(
    "junk",
    [
        "a string",
        42,
        4.2,
        True,
        [],
        [observation("o1")],
        {},
        {"resourceType": 5},
        {"resourceType": ""},
        {"resourceType": "Bundle", "entry": {"resource": observation("o1")}},
        {"resourceType": "Bundle", "entry": "x"},
    ],
)
def test_junk_prefetch_value_is_unavailable_naming_the_key(
    junk: Any, client: RequestsFhirClient
) -> None:
    with pytest.raises(DataUnavailable) as raised:
        run(hook_request(full_prefetch(observations=junk)), client)
    assert raised.value.missing == ["observations"]
    assert _expressions(raised.value) == {"prefetch.observations"}


def test_junk_entries_inside_a_bundle_are_skipped_with_a_note(client: RequestsFhirClient) -> None:
    value = bundle(observation("o1"))
    value["entry"] += ["x", 3, None, {"fullUrl": "urn:uuid:1"}, {"resource": "text"}]
    data = run(hook_request(full_prefetch(observations=value)), client)
    assert [r.id for r in data.resources["observations"]] == ["o1"]
    assert "prefetch 'observations': skipped 5 entries without a resource" in data.notes


def test_prefetch_cap_keeps_the_first_resources(client: RequestsFhirClient) -> None:
    value = bundle(*(observation(f"o{i}") for i in range(5)))
    data = run(hook_request(full_prefetch(observations=value)), client, max_entries=3)
    assert [r.id for r in data.resources["observations"]] == ["o0", "o1", "o2"]
    assert "prefetch 'observations' capped at 3 resources" in data.notes
    assert len(value["entry"]) == 5  # the request itself is left alone


def test_prefetch_with_a_next_link_is_noted(client: RequestsFhirClient) -> None:
    value = bundle(observation("o1"), next_url="https://ehr.example.org/fhir/Observation?page=2")
    data = run(hook_request(full_prefetch(observations=value)), client)
    assert "prefetch 'observations' has further pages that were not sent" in data.notes


def test_keys_outside_the_templates_are_ignored(client: RequestsFhirClient) -> None:
    data = run(hook_request(full_prefetch(extra="junk", other=outcome())), client)
    assert set(data.resources) == {"patient", "observations", "medicationRequests"}


def test_prefetch_metrics_count_hit_null_and_miss(client: RequestsFhirClient) -> None:
    def count(key: str, result: str) -> float:
        value = REGISTRY.get_sample_value("cds_prefetch_total", {"key": key, "outcome": result})
        return value or 0.0

    before = (count("patient", "hit"), count("observations", "null"), count("observations", "miss"))
    run(hook_request(full_prefetch(observations=None)), client)
    with pytest.raises(DataUnavailable):
        run(
            hook_request({"patient": patient(), "medicationRequests": bundle(med_request("r"))}),
            client,
        )
    after = (count("patient", "hit"), count("observations", "null"), count("observations", "miss"))
    assert [b - a for a, b in zip(before, after, strict=True)] == [2.0, 1.0, 1.0]
