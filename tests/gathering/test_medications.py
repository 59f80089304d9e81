"""Referenced Medications: from prefetch bundles, from the server, or left to the display."""

from __future__ import annotations

import pytest

from cds_service.gathering import RequestsFhirClient

from .support import (
    TOKEN,
    FakeFhirServer,
    bundle,
    full_prefetch,
    hook_request,
    med_request,
    medication,
    outcome,
    run,
)


def _ordering(*references: str, included: tuple[dict[str, object], ...] = ()) -> dict[str, object]:
    orders = [med_request(f"r{i}", ref) for i, ref in enumerate(references)]
    return full_prefetch(medicationRequests=bundle(*orders, included=included))


def test_medication_included_in_a_prefetch_bundle(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    prefetch = _ordering("Medication/m1", included=(medication("m1"),))
    data = run(hook_request(prefetch, fhir_server=fhir.base), client)
    assert data.medications["Medication/m1"].id == "m1"
    assert fhir.seen == []
    assert data.notes == ()


def test_medication_from_another_prefetch_key(client: RequestsFhirClient) -> None:
    prefetch = _ordering("Medication/m1")
    prefetch["observations"] = bundle(medication("m1"))
    data = run(hook_request(prefetch), client)
    assert "Medication/m1" in data.medications


def test_medication_fetched_from_the_server_with_the_token(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    fhir.add("/fhir/Medication/m2", medication("m2"))
    data = run(hook_request(_ordering("Medication/m2"), fhir_server=fhir.base, token=TOKEN), client)
    assert data.medications["Medication/m2"].id == "m2"
    assert [(s.path, s.authorization) for s in fhir.seen] == [
        ("/fhir/Medication/m2", f"Bearer {TOKEN}")
    ]
    assert data.notes == ()


def test_absolute_reference_on_the_server_is_fetched(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    fhir.add("/fhir/Medication/m2", medication("m2"))
    prefetch = _ordering(f"{fhir.base}/Medication/m2")
    data = run(hook_request(prefetch, fhir_server=fhir.base), client)
    assert "Medication/m2" in data.medications


def test_unresolvable_medication_only_adds_a_note(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    fhir.add("/fhir/Medication/bad", {"resourceType": "Patient", "id": "x"})
    prefetch = _ordering("Medication/abc", "Medication/bad")
    data = run(hook_request(prefetch, fhir_server=fhir.base), client)
    assert data.medications == {}
    assert data.notes == (
        "Medication/abc could not be resolved: HTTP 404",
        "Medication/bad could not be resolved: not a Medication",
    )


def test_medication_on_another_server_is_not_fetched(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    prefetch = _ordering("https://other.example.org/fhir/Medication/m9")
    data = run(hook_request(prefetch, fhir_server=fhir.base, token=TOKEN), client)
    assert fhir.seen == []
    assert data.notes == ("Medication/m9 could not be resolved: it is on another server",)


def test_without_fhir_server_the_reference_is_noted(client: RequestsFhirClient) -> None:
    data = run(hook_request(_ordering("Medication/m1")), client)
    assert data.notes == ("Medication/m1 could not be resolved: not in prefetch and no fhirServer",)


def test_contained_and_display_only_references_are_left_to_the_consumer(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    contained = med_request("r1", "#med")
    contained["contained"] = [medication("med")]
    display_only = med_request("r2")
    display_only["medicationReference"] = {"display": "Tacrolimus"}
    prefetch = full_prefetch(medicationRequests=bundle(contained, display_only))
    data = run(hook_request(prefetch, fhir_server=fhir.base), client)
    assert fhir.seen == []
    assert data.medications == {}
    assert data.notes == ()


@pytest.mark.parametrize("reference", ["Patient/1", "Medication/../x", "urn:uuid:123", ""])
def test_other_references_are_counted_in_a_note(
    reference: str, fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    data = run(hook_request(_ordering(reference), fhir_server=fhir.base), client)
    assert fhir.seen == []
    assert data.notes == (
        "1 medicationReference(s) could not be resolved: not a Medication reference",
    )
    assert reference == "" or reference not in " ".join(data.notes)


def test_medication_referenced_by_a_fetched_order_is_fetched_too(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    fhir.add("/fhir/MedicationRequest", bundle(med_request("r1", "Medication/m3")))
    fhir.add("/fhir/Medication/m3", medication("m3"))
    prefetch = full_prefetch()
    del prefetch["medicationRequests"]
    data = run(hook_request(prefetch, fhir_server=fhir.base), client)
    assert "Medication/m3" in data.medications
    assert fhir.paths() == ["/fhir/MedicationRequest", "/fhir/Medication/m3"]


def test_medication_referenced_by_a_draft_order_is_fetched(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    fhir.add("/fhir/Medication/m4", medication("m4"))
    drafts = {"resourceType": "Bundle", "entry": [{"resource": med_request("d1", "Medication/m4")}]}
    request = hook_request(
        full_prefetch(), fhir_server=fhir.base, draft_orders=drafts, hook="order-sign"
    )
    data = run(request, client)
    assert "Medication/m4" in data.medications


def test_slow_medication_is_noted_not_fatal(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    fhir.add("/fhir/Medication/slow", medication("slow"), delay_s=10)
    data = run(
        hook_request(_ordering("Medication/slow"), fhir_server=fhir.base), client, timeout_s=0.3
    )
    assert data.medications == {}
    assert data.notes == ("Medication/slow could not be resolved: timed out",)


def test_failing_medication_does_not_fail_the_call(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    fhir.add("/fhir/Medication/m5", outcome(), status=500)
    data = run(hook_request(_ordering("Medication/m5"), fhir_server=fhir.base), client)
    assert data.notes == ("Medication/m5 could not be resolved: HTTP 500",)


def test_versioned_reference_reads_that_version(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    fhir.add("/fhir/Medication/m6/_history/2", medication("m6"))
    data = run(hook_request(_ordering("Medication/m6/_history/2"), fhir_server=fhir.base), client)
    assert "Medication/m6" in data.medications
