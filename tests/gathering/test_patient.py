"""One patient per call: a mismatched prefetched Patient is a 400; data about another, dropped."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.gathering import RequestsFhirClient
from cds_service.metrics import REGISTRY
from cds_service.protocol import BadRequest

from .support import (
    PATIENT_ID,
    FakeFhirServer,
    bundle,
    full_prefetch,
    hook_request,
    med_request,
    observation,
    patient,
    run,
)


def _about(resource: dict[str, Any], reference: str, member: str = "subject") -> dict[str, Any]:
    return {**resource, member: {"reference": reference}}


def _dropped(resource_type: str) -> float:
    value = REGISTRY.get_sample_value(
        "cds_other_patient_resources_total", {"resource_type": resource_type}
    )
    return value or 0.0


def test_a_prefetched_patient_with_another_id_is_a_400_naming_the_key(
    client: RequestsFhirClient,
) -> None:
    other = {**patient(), "id": "someone-else"}
    with pytest.raises(BadRequest) as caught:
        run(hook_request(full_prefetch(patient=other)), client)
    assert caught.value.status == 400
    [issue] = caught.value.issues
    assert issue.expression == "prefetch.patient"
    assert "Patient whose id is not context.patientId" in issue.diagnostics
    assert "someone-else" not in issue.diagnostics


def test_a_patient_without_an_id_is_not_a_mismatch(client: RequestsFhirClient) -> None:
    anonymous = {"resourceType": "Patient", "gender": "female"}
    data = run(hook_request(full_prefetch(patient=anonymous)), client)
    assert len(data.resources["patient"]) == 1


@pytest.mark.parametrize(
    "reference",
    [
        "Patient/someone-else",
        "https://fhir.example.org/r4/Patient/someone-else",
        "Patient/someone-else/_history/3",
    ],
)
def test_observations_about_another_patient_are_dropped_noted_and_counted(
    client: RequestsFhirClient, reference: str
) -> None:
    before = _dropped("Observation")
    prefetch = full_prefetch(
        observations=bundle(observation("mine"), _about(observation("theirs"), reference))
    )
    data = run(hook_request(prefetch), client)
    assert [r.id for r in data.resources["observations"]] == ["mine"]
    assert "prefetch 'observations': dropped 1 resource(s) about another patient" in data.notes
    assert _dropped("Observation") == before + 1
    assert not any("someone-else" in note for note in data.notes)


@pytest.mark.parametrize(
    "reference",
    [
        f"Patient/{PATIENT_ID}",
        f"https://fhir.example.org/r4/Patient/{PATIENT_ID}/_history/2",
        "#contained-patient",
        "urn:uuid:5b7b1b5c-9b8e-4b55-9ef1-1b0a2b4d4c11",
        "Group/ward-7",
    ],
)
def test_references_that_do_not_name_another_patient_are_kept(
    client: RequestsFhirClient, reference: str
) -> None:
    prefetch = full_prefetch(observations=bundle(_about(observation("o1"), reference)))
    data = run(hook_request(prefetch), client)
    assert [r.id for r in data.resources["observations"]] == ["o1"]


def test_a_subject_by_identifier_or_display_only_is_kept(client: RequestsFhirClient) -> None:
    by_identifier = {
        **observation("o1"),
        "subject": {"identifier": {"system": "urn:mrn", "value": "123"}},
    }
    by_display = {**observation("o2"), "subject": {"display": "Someone"}}
    no_subject = {k: v for k, v in observation("o3").items() if k != "subject"}
    prefetch = full_prefetch(observations=bundle(by_identifier, by_display, no_subject))
    data = run(hook_request(prefetch), client)
    assert [r.id for r in data.resources["observations"]] == ["o1", "o2", "o3"]


def test_the_patient_member_counts_too(client: RequestsFhirClient) -> None:
    # DSTU2-style MedicationStatement / MedicationOrder name the patient in ``patient``.
    theirs = _about(med_request("theirs"), "Patient/someone-else", member="patient")
    del theirs["subject"]
    prefetch = full_prefetch(medicationRequests=bundle(med_request("mine"), theirs))
    data = run(hook_request(prefetch), client)
    assert [r.id for r in data.resources["medicationRequests"]] == ["mine"]


def test_a_medication_referenced_only_by_another_patients_order_is_not_fetched(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    theirs = _about(med_request("theirs", "Medication/m1"), "Patient/someone-else")
    prefetch = full_prefetch(medicationRequests=bundle(theirs))
    data = run(hook_request(prefetch, fhir_server=fhir.base), client)
    assert data.resources["medicationRequests"] == []
    assert fhir.seen == []


def test_fetched_resources_about_another_patient_are_dropped(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    fhir.add(
        "/fhir/Observation",
        bundle(observation("mine"), _about(observation("theirs"), "Patient/someone-else")),
    )
    prefetch = full_prefetch()
    del prefetch["observations"]
    data = run(hook_request(prefetch, fhir_server=fhir.base), client)
    assert [r.id for r in data.resources["observations"]] == ["mine"]
    assert "prefetch 'observations': dropped 1 resource(s) about another patient" in data.notes


def test_a_fetched_patient_with_another_id_is_dropped_not_a_400(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    fhir.add(f"/fhir/Patient/{PATIENT_ID}", {**patient(), "id": "someone-else"})
    prefetch = full_prefetch()
    del prefetch["patient"]
    data = run(hook_request(prefetch, fhir_server=fhir.base), client)
    assert data.resources["patient"] == []
    assert "prefetch 'patient': dropped 1 resource(s) about another patient" in data.notes


def test_draft_orders_about_another_patient_are_dropped(client: RequestsFhirClient) -> None:
    drafts = bundle(
        {**med_request("mine"), "status": "draft"},
        _about({**med_request("theirs"), "status": "draft"}, "Patient/someone-else"),
    )
    data = run(hook_request(full_prefetch(), draft_orders=drafts, hook="order-sign"), client)
    assert [r.id for r in data.draft_orders] == ["mine"]
    assert "draftOrders: dropped 1 resource(s) about another patient" in data.notes
