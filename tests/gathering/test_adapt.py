"""What a refused request says the FHIR server does not support, and the URLs asked instead."""

from __future__ import annotations

import pytest

from cds_service.gathering._adapt import (
    UNSUPPORTED,
    LocalSort,
    Rejection,
    Target,
    classify,
    local_sort,
    query_value,
    resource_label,
    smaller_page,
    sort_resources,
    target_of,
    with_param,
)
from cds_service.protocol import as_resource

BASE = "https://ehr.example.org/fhir/r4"
OBSERVATIONS = (
    f"{BASE}/Observation?patient=p1&code=http://loinc.org|19123-9&_sort=-date&_count=1000"
)
STATEMENTS = f"{BASE}/MedicationStatement?patient=p1&status=active"
SEARCH_OBS = Target("Observation", search=True)
SEARCH_MS = Target("MedicationStatement", search=True)
READ_MED = Target("Medication", search=False)
READ_PATIENT = Target("Patient", search=False)


def test_targets_are_read_from_the_relative_url() -> None:
    assert target_of("Observation?patient=1&code=x") == SEARCH_OBS
    assert target_of("/MedicationStatement?patient=1") == SEARCH_MS
    assert target_of("Patient/pat-1") == READ_PATIENT
    assert target_of("Observation") == SEARCH_OBS
    assert target_of("$everything?x=1") is None
    assert target_of("") is None


def test_query_parameters_are_edited_as_written() -> None:
    assert query_value(OBSERVATIONS, "_count") == "1000"
    assert query_value(OBSERVATIONS, "code") == "http://loinc.org|19123-9"
    assert query_value(OBSERVATIONS, "status") is None
    assert with_param(OBSERVATIONS, "_count", "200") == OBSERVATIONS.replace("1000", "200")
    assert with_param(OBSERVATIONS, "_sort", None) == (
        f"{BASE}/Observation?patient=p1&code=http://loinc.org|19123-9&_count=1000"
    )
    assert with_param(STATEMENTS, "_count", "50") == f"{STATEMENTS}&_count=50"
    assert with_param(f"{BASE}/Condition?_sort=x", "_sort", None) == f"{BASE}/Condition"
    assert with_param(f"{BASE}/Condition", "_count", "9") == f"{BASE}/Condition?_count=9"


Answer = tuple[int, tuple[str, ...], tuple[str, ...]]


def _outcome(status: int, *texts: str, codes: tuple[str, ...] = ("invalid",)) -> Answer:
    """A refusal: its status, and its OperationOutcome's issue codes and texts."""
    return status, codes, texts


@pytest.mark.parametrize(
    ("answer", "url", "target", "verdict"),
    [
        pytest.param(
            _outcome(400, "The _count parameter value 1000 is invalid: between 1 and 200."),
            OBSERVATIONS,
            SEARCH_OBS,
            Rejection(page_size=200),
            id="count-with-a-stated-maximum",
        ),
        pytest.param(
            _outcome(422, "count too large"),
            OBSERVATIONS,
            SEARCH_OBS,
            Rejection(page_size=100),
            id="count-without-a-number",
        ),
        pytest.param(
            _outcome(400, "Observation._count", codes=("invalid",)),
            OBSERVATIONS,
            SEARCH_OBS,
            Rejection(page_size=100),
            id="count-named-in-expression",
        ),
        pytest.param(
            _outcome(400, "The _sort parameter is not supported.", codes=("not-supported",)),
            OBSERVATIONS,
            SEARCH_OBS,
            Rejection(drop_sort=True),
            id="sort-not-supported-is-not-the-type",
        ),
        pytest.param(
            _outcome(400, "_sort and _count (max 200) are not supported together"),
            OBSERVATIONS,
            SEARCH_OBS,
            Rejection(page_size=200, drop_sort=True),
            id="both-at-once",
        ),
        pytest.param(
            _outcome(404, codes=()),
            STATEMENTS,
            SEARCH_MS,
            UNSUPPORTED,
            id="404-on-a-type-search",
        ),
        pytest.param(
            _outcome(400, "Resource type MedicationStatement is not supported"),
            STATEMENTS,
            SEARCH_MS,
            UNSUPPORTED,
            id="400-text-names-the-type",
        ),
        pytest.param(
            _outcome(400, "nope", codes=("not-supported",)),
            STATEMENTS,
            SEARCH_MS,
            UNSUPPORTED,
            id="400-not-supported-code",
        ),
        pytest.param(
            _outcome(501, codes=("not-supported",)),
            STATEMENTS,
            SEARCH_MS,
            UNSUPPORTED,
            id="501-not-supported-code",
        ),
        pytest.param(
            _outcome(400, "Invalid search"),
            STATEMENTS,
            SEARCH_MS,
            None,
            id="400-that-says-nothing",
        ),
        pytest.param(
            _outcome(400, "The status parameter is not supported", codes=("not-supported",)),
            STATEMENTS,
            SEARCH_MS,
            None,
            id="another-parameter-of-ours",
        ),
        pytest.param(
            _outcome(404, "Patient p1 not found", codes=("not-found",)),
            STATEMENTS,
            SEARCH_MS,
            None,
            id="404-about-the-patient",
        ),
        pytest.param(
            _outcome(500, "MedicationStatement not supported", codes=("not-supported",)),
            STATEMENTS,
            SEARCH_MS,
            None,
            id="5xx-is-never-unsupported",
        ),
        pytest.param(
            _outcome(400, "_count must be at most 200"),
            STATEMENTS,
            SEARCH_MS,
            None,
            id="count-we-did-not-send",
        ),
        pytest.param(
            _outcome(404, "Medication/m1 not found", codes=("not-found",)),
            f"{BASE}/Medication/m1",
            READ_MED,
            None,
            id="read-404-is-not-found",
        ),
        pytest.param(
            _outcome(404, codes=()),
            f"{BASE}/Medication/m1",
            READ_MED,
            None,
            id="read-404-bare",
        ),
        pytest.param(
            _outcome(404, "Resource type Medication is not supported", codes=("not-found",)),
            f"{BASE}/Medication/m1",
            READ_MED,
            UNSUPPORTED,
            id="read-404-says-unsupported",
        ),
        pytest.param(
            _outcome(400, codes=("not-supported",)),
            f"{BASE}/Medication/m1",
            READ_MED,
            UNSUPPORTED,
            id="read-400-not-supported",
        ),
        pytest.param(
            _outcome(403, codes=("not-supported",)),
            f"{BASE}/Medication/m1",
            READ_MED,
            None,
            id="read-403-is-a-refusal",
        ),
    ],
)
def test_classify(answer: Answer, url: str, target: Target, verdict: object) -> None:
    status, codes, texts = answer
    assert classify(status, codes, texts, url, target) == verdict


def test_no_status_is_never_an_adaptation() -> None:
    assert classify(None, ("not-supported",), (), STATEMENTS, SEARCH_MS) is None


@pytest.mark.parametrize(
    ("sent", "texts", "smaller"),
    [
        ("1000", ["_count must be between 1 and 200."], 200),
        ("1000", ["_count 1000 > 500 (max); use 4.0.1 paging"], 500),
        ("1000", ["_count is too large"], 100),
        ("150", ["_count is too large"], 75),
        ("1", ["_count is too large"], None),
        ("abc", ["_count is not a number"], 100),
        ("1000", ["patient 123456 is fine", "_count too large"], 100),
    ],
)
def test_smaller_page(sent: str, texts: list[str], smaller: int | None) -> None:
    assert smaller_page(sent, texts) == smaller


def test_local_sort_stands_in_for_a_date_sort_only() -> None:
    assert local_sort("-date") == LocalSort(newest_first=True)
    assert local_sort("date,-_id") == LocalSort(newest_first=False)
    assert local_sort("-authoredon") == LocalSort(newest_first=True)
    assert local_sort("_id") is None
    assert local_sort(None) is None


def test_resources_are_sorted_by_their_clinical_date_undated_last() -> None:
    raw = [
        {"resourceType": "Observation", "id": "undated"},
        {"resourceType": "Observation", "id": "old", "effectiveDateTime": "2024-01-02"},
        {
            "resourceType": "Observation",
            "id": "tz",
            "effectiveDateTime": "2026-11-20T01:00:00+05:00",
        },
        {"resourceType": "Observation", "id": "new", "effectiveDateTime": "2026-11-19T21:00:00Z"},
        {"resourceType": "Observation", "id": "period", "effectivePeriod": {"start": "2025-06"}},
        {"resourceType": "Observation", "id": "issued", "issued": "2025-07-01T00:00:00Z"},
        {"resourceType": "MedicationRequest", "id": "order", "authoredOn": "2026-01-01"},
        {"resourceType": "Observation", "id": "junk", "effectiveDateTime": "yesterday"},
    ]
    resources = [r for r in map(as_resource, raw) if r is not None]
    sort_resources(resources, LocalSort(newest_first=True))
    assert [r.id for r in resources] == [
        "new",  # 21:00 UTC is after 01:00+05:00 (20:00 UTC the day before)
        "tz",
        "order",
        "issued",
        "period",
        "old",
        "undated",
        "junk",
    ]
    sort_resources(resources, LocalSort(newest_first=False))
    assert [r.id for r in resources][:2] == ["old", "period"]


def test_metric_labels_name_a_known_few_types() -> None:
    assert resource_label("MedicationStatement") == "MedicationStatement"
    assert resource_label("Basic") == "other"
