"""context.draftOrders as the CDS Hooks sandbox and other real clients send it."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.gathering import RequestsFhirClient
from cds_service.protocol import as_resource

from .support import PATIENT_ID, full_prefetch, hook_request, med_request, run


def _sandbox_draft() -> dict[str, Any]:
    # Before a drug is picked: no medication and no intent; category/reasonCode as objects.
    return {
        "resourceType": "MedicationRequest",
        "id": "new-1",
        "status": "draft",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "category": {"text": "outpatient"},
        "reasonCode": {"text": "hypomagnesemia"},
    }


def _drafts(drafts: Any, client: RequestsFhirClient, **limits: Any) -> Any:
    request = hook_request(full_prefetch(), draft_orders=drafts, hook="order-sign")
    return run(request, client, **limits)


def test_sandbox_quirks_are_read_as_sent(client: RequestsFhirClient) -> None:
    # No Bundle.type, as the sandbox sends it.
    data = _drafts({"resourceType": "Bundle", "entry": [{"resource": _sandbox_draft()}]}, client)
    [draft] = data.draft_orders
    assert draft == as_resource(_sandbox_draft())
    assert (draft.id, draft.status, draft.medicationCodeableConcept) == ("new-1", "draft", None)
    assert data.notes == ()


@pytest.mark.parametrize(
    "drafts",
    [
        {"resourceType": "Bundle"},
        {"resourceType": "Bundle", "type": "collection", "entry": []},
        {"resourceType": "Bundle", "entry": None},
    ],
)
def test_bundle_without_entries_has_no_drafts(drafts: Any, client: RequestsFhirClient) -> None:
    data = _drafts(drafts, client)
    assert data.draft_orders == []
    assert data.notes == ()


def test_patient_view_has_no_drafts(client: RequestsFhirClient) -> None:
    assert run(hook_request(full_prefetch()), client).draft_orders == []


def test_junk_draft_entries_are_skipped(client: RequestsFhirClient) -> None:
    drafts = {
        "resourceType": "Bundle",
        "entry": [{"resource": med_request("d1")}, "x", {"resource": 5}, {}],
    }
    data = _drafts(drafts, client)
    assert [d.id for d in data.draft_orders] == ["d1"]
    assert data.notes == ("draftOrders: skipped 3 entries without a resource",)


@pytest.mark.parametrize("drafts", ["none", 7, {"resourceType": "Bundle", "entry": {}}])
def test_junk_draft_orders_are_ignored_with_a_note(drafts: Any, client: RequestsFhirClient) -> None:
    request = hook_request(full_prefetch(), draft_orders=drafts)
    data = run(request, client)
    assert data.draft_orders == []
    assert len(data.notes) == 1


def _contained_within_contained(depth: int) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Medication", "id": "innermost"}
    for _ in range(depth):
        resource = {"resourceType": "Medication", "contained": [resource]}
    return {**med_request("deep"), "contained": [resource]}


def test_draft_nested_beyond_the_recursion_limit_is_ignored_with_a_note(
    client: RequestsFhirClient,
) -> None:
    # 500 contained levels are 1,000 JSON levels: orjson decodes them, the models cannot.
    deep = _contained_within_contained(500)
    data = _drafts(deep, client)
    assert (data.draft_orders, data.notes) == ([], ("draftOrders is nested too deeply: ignored",))
    data = _drafts({"resourceType": "Bundle", "entry": [{"resource": deep}]}, client)
    assert (data.draft_orders, data.notes) == (
        [],
        ("draftOrders: skipped 1 entries without a resource",),
    )
    shallow = _drafts(_contained_within_contained(20), client)
    assert [d.id for d in shallow.draft_orders] == ["deep"]


def test_array_of_resources_is_tolerated(client: RequestsFhirClient) -> None:
    request = hook_request(
        full_prefetch(), draft_orders=[med_request("d1"), {"resource": med_request("d2")}]
    )
    assert [d.id for d in run(request, client).draft_orders] == ["d1", "d2"]


def test_draft_cap_keeps_the_newest(client: RequestsFhirClient) -> None:
    entries = [{"resource": med_request(f"d{i}")} for i in range(5)]
    data = _drafts({"resourceType": "Bundle", "entry": entries}, client, max_draft_orders=2)
    assert [d.id for d in data.draft_orders] == ["d3", "d4"]
    assert data.notes == ("draftOrders capped at 2",)
