"""The demo FHIR test double: reads, search semantics, paging, sorting, errors and CORS."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

import pytest
from fastapi.testclient import TestClient

from cds_service.protocol import prefetch_templates

from ..support import shipped_content
from .support import FHIR, SANDBOX_ORIGIN, demo_client

LOINC = "http://loinc.org"


@pytest.fixture(scope="module")
def client() -> TestClient:
    return demo_client()


def _search(client: TestClient, query: str) -> dict[str, Any]:
    response = client.get(f"/demo/fhir/{query}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "Bundle"
    assert body["type"] == "searchset"
    return body


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode") == "match"
    ]


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((x["url"] for x in bundle["link"] if x["relation"] == relation), None)


ANNA_OBSERVATIONS = {
    "t-anna-mg-3",
    "t-anna-mg-1",
    "t-anna-mg-2",
    "t-anna-k-1",
    "t-anna-local-1",
    "t-anna-undated",
}


# -- reads and metadata ---------------------------------------------------------------------


def test_patient_read(client: TestClient) -> None:
    response = client.get("/demo/fhir/Patient/t-anna")
    assert response.status_code == 200
    assert response.json()["name"][0]["given"] == ["Anna"]


def test_unknown_resources_are_404_operation_outcomes(client: TestClient) -> None:
    for path in ("Patient/nobody", "Observation/nothing", "Encounter/x", "Encounter"):
        response = client.get(f"/demo/fhir/{path}")
        assert response.status_code == 404, path
        assert response.json()["resourceType"] == "OperationOutcome"


def test_only_demo_scenarios_are_served_and_draft_orders_are_not_stored(
    client: TestClient,
) -> None:
    assert client.get("/demo/fhir/Patient/t-hidden").status_code == 404
    assert client.get("/demo/fhir/MedicationRequest/request-123").status_code == 404
    bundle = _search(client, "Patient")
    assert sorted(_ids(bundle)) == ["t-anna", "t-bob"]


def test_metadata_is_an_r4_capability_statement(client: TestClient) -> None:
    body = client.get("/demo/fhir/metadata").json()
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"] == "4.0.1"
    assert "test double" in body["implementation"]["description"]
    types = {r["type"] for r in body["rest"][0]["resource"]}
    assert {"Patient", "Observation", "MedicationRequest", "MedicationStatement"} <= types


def test_medication_read_and_search_by_code(client: TestClient) -> None:
    assert client.get("/demo/fhir/Medication/t-med-envarsus").json()["id"] == "t-med-envarsus"
    bundle = _search(client, "Medication?code=http://www.nlm.nih.gov/research/umls/rxnorm|1593271")
    assert _ids(bundle) == ["t-med-envarsus"]


def test_the_service_is_read_only(client: TestClient) -> None:
    response = client.post("/demo/fhir/Patient", json={"resourceType": "Patient"})
    assert response.status_code == 405
    assert response.json()["resourceType"] == "OperationOutcome"
    assert client.delete("/demo/fhir/Patient/t-anna").status_code == 405


# -- patient ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "param",
    [
        "patient=t-anna",
        "patient=Patient/t-anna",
        "subject=Patient/t-anna",
        "subject:Patient=t-anna",
        "patient=http://elsewhere.example/fhir/Patient/t-anna",
    ],
)
def test_patient_reference_forms(client: TestClient, param: str) -> None:
    assert set(_ids(_search(client, f"Observation?{param}&_count=50"))) == ANNA_OBSERVATIONS


def test_patient_search_stays_within_the_patient(client: TestClient) -> None:
    assert _ids(_search(client, "Observation?patient=t-bob")) == ["t-bob-mg-1"]
    assert _ids(_search(client, "Observation?patient=Practitioner/t-anna")) == []
    both = _search(client, "Observation?patient=t-bob,t-anna&_count=50")
    assert set(_ids(both)) == ANNA_OBSERVATIONS | {"t-bob-mg-1"}


# -- code -------------------------------------------------------------------------------------


def test_code_system_and_code(client: TestClient) -> None:
    bundle = _search(client, f"Observation?patient=t-anna&code={LOINC}|2601-3")
    # The local code with the same value in another system does not match.
    assert set(_ids(bundle)) == {"t-anna-mg-3", "t-anna-mg-2", "t-anna-undated"}


def test_bare_code_matches_any_system(client: TestClient) -> None:
    bundle = _search(client, "Observation?patient=t-anna&code=2601-3")
    assert set(_ids(bundle)) == {"t-anna-mg-3", "t-anna-mg-2", "t-anna-undated", "t-anna-local-1"}


def test_code_comma_list_is_or_and_url_encoding_is_decoded(client: TestClient) -> None:
    # The sandbox URI-encodes each value: "|" as %7C, "," as %2C.
    query = "code=http%3A%2F%2Floinc.org%7C19123-9%2Chttp%3A%2F%2Floinc.org%7C2823-3"
    bundle = _search(client, f"Observation?patient=t-anna&{query}")
    assert set(_ids(bundle)) == {"t-anna-mg-1", "t-anna-k-1"}


def test_system_only_token(client: TestClient) -> None:
    bundle = _search(client, "Observation?patient=t-anna&code=urn:oid:1.2.3.4|")
    assert _ids(bundle) == ["t-anna-local-1"]


def test_medication_request_code_and_status(client: TestClient) -> None:
    rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
    bundle = _search(client, f"MedicationRequest?patient=t-anna&code={rxnorm}|198377")
    assert _ids(bundle) == ["t-anna-rx-tac"]


# -- status -----------------------------------------------------------------------------------


def test_status_comma_list(client: TestClient) -> None:
    active = _search(client, "MedicationRequest?patient=t-anna&status=active")
    assert _ids(active) == ["t-anna-rx-tac"]
    some = _search(client, "MedicationRequest?patient=t-anna&status=active,on-hold")
    assert set(_ids(some)) == {"t-anna-rx-tac", "t-anna-rx-env"}
    statements = _search(client, "MedicationStatement?patient=t-anna&status=active")
    assert _ids(statements) == ["t-anna-ms-1"]
    final = _search(client, "Observation?patient=t-anna&status=amended")
    assert _ids(final) == ["t-anna-mg-2"]


# -- dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # mg-3 2026-11-19T07:30Z, mg-2 2026-10-15 (a day), mg-1 2026-09-01T08:00Z,
        # k-1 2026-11-18 06:00-06:30Z (a period), local-1 2026-11-10T07:00Z (09:00+02:00).
        ("date=ge2026-11-01", {"t-anna-mg-3", "t-anna-k-1", "t-anna-local-1"}),
        ("date=gt2026-11-18", {"t-anna-mg-3"}),
        ("date=lt2026-10-15", {"t-anna-mg-1"}),
        ("date=le2026-10-15", {"t-anna-mg-1", "t-anna-mg-2"}),
        ("date=2026-10", {"t-anna-mg-2"}),
        ("date=eq2026-11-18", {"t-anna-k-1"}),
        ("date=ge2026-10-01&date=lt2026-11-15", {"t-anna-mg-2", "t-anna-local-1"}),
        ("date=ge2026-11-10T07:00:00Z&date=le2026-11-10T07:00:00Z", {"t-anna-local-1"}),
        ("date=lt2026-11-10T09:00:01%2B02:00", {"t-anna-mg-1", "t-anna-mg-2", "t-anna-local-1"}),
        ("date=sa2026-11-18", {"t-anna-mg-3"}),
        ("date=eb2026-10-01", {"t-anna-mg-1"}),
    ],
)
def test_date_prefixes(client: TestClient, query: str, expected: set[str]) -> None:
    # A resource without an effective date never matches a date search.
    assert set(_ids(_search(client, f"Observation?patient=t-anna&{query}"))) == expected


def test_date_on_medication_requests_is_authored_on(client: TestClient) -> None:
    bundle = _search(client, "MedicationRequest?patient=t-anna&date=ge2026-06-01")
    assert set(_ids(bundle)) == {"t-anna-rx-tac", "t-anna-rx-env"}
    same = _search(client, "MedicationRequest?patient=t-anna&authoredon=ge2026-06-01")
    assert _ids(same) == _ids(bundle)


def test_a_bad_date_or_count_is_a_400_operation_outcome(client: TestClient) -> None:
    for query in ("date=ge2026-13-01", "date=yesterday", "_count=ten", "_count=-1"):
        response = client.get(f"/demo/fhir/Observation?patient=t-anna&{query}")
        assert response.status_code == 400, query
        assert response.json()["issue"][0]["code"] == "invalid"


# -- paging -----------------------------------------------------------------------------------


def test_count_pages_with_next_links_until_every_match_is_read(client: TestClient) -> None:
    first = _search(client, "Observation?patient=t-anna&_count=4&_sort=-date")
    assert first["total"] == 6
    assert len(_ids(first)) == 4
    next_url = _link(first, "next")
    assert next_url is not None and next_url.startswith(FHIR + "/Observation?")
    assert parse_qs(urlsplit(next_url).query)["_offset"] == ["4"]
    second = client.get(next_url).json()
    assert second["total"] == 6
    assert len(_ids(second)) == 2
    assert _link(second, "next") is None
    assert set(_ids(first) + _ids(second)) == ANNA_OBSERVATIONS


def test_count_zero_gives_only_the_total(client: TestClient) -> None:
    bundle = _search(client, "Observation?patient=t-anna&_count=0")
    assert bundle["total"] == 6
    assert "entry" not in bundle
    assert _link(bundle, "next") is None


def test_entries_have_full_urls(client: TestClient) -> None:
    bundle = _search(client, "Observation?patient=t-bob")
    assert bundle["entry"][0]["fullUrl"] == f"{FHIR}/Observation/t-bob-mg-1"


# -- sorting ----------------------------------------------------------------------------------


def test_sort_by_date_descending_and_ascending(client: TestClient) -> None:
    newest_first = _ids(_search(client, "Observation?patient=t-anna&_sort=-date"))
    assert newest_first == [
        "t-anna-mg-3",
        "t-anna-k-1",
        "t-anna-local-1",
        "t-anna-mg-2",
        "t-anna-mg-1",
        "t-anna-undated",  # no date: last either way
    ]
    oldest_first = _ids(_search(client, "Observation?patient=t-anna&_sort=date"))
    assert oldest_first == [*reversed(newest_first[:-1]), "t-anna-undated"]


# -- unknown parameters -----------------------------------------------------------------------


def test_unknown_parameters_are_ignored_and_reported(client: TestClient) -> None:
    plain = _search(client, "Observation?patient=t-anna&code=2601-3")
    odd = _search(client, "Observation?patient=t-anna&code=2601-3&_elements=id&flavour=x")
    assert _ids(odd) == _ids(plain)
    self_link = _link(odd, "self")
    assert self_link is not None
    query = parse_qs(urlsplit(self_link).query)
    assert query["patient"] == ["t-anna"] and query["code"] == ["2601-3"]
    assert "flavour" not in query and "_elements" not in query
    (outcome,) = [
        e["resource"] for e in odd["entry"] if e.get("search", {}).get("mode") == "outcome"
    ]
    assert outcome["issue"][0]["severity"] == "information"
    assert "flavour" in outcome["issue"][0]["diagnostics"]
    assert "_elements" in outcome["issue"][0]["diagnostics"]


def test_condition_search_is_empty(client: TestClient) -> None:
    # The sandbox reads a patient's conditions for its Rx View; the demo has none.
    bundle = _search(client, "Condition?patient=t-anna")
    assert bundle["total"] == 0


# -- CORS -------------------------------------------------------------------------------------


def test_every_response_allows_any_origin(client: TestClient) -> None:
    headers = {"Origin": SANDBOX_ORIGIN, "Accept": "application/json+fhir"}
    for path in ("metadata", "Patient/t-anna", "Patient/nobody", "Observation?date=bad"):
        response = client.get(f"/demo/fhir/{path}", headers=headers)
        assert response.headers["access-control-allow-origin"] == "*", path


def test_preflight_is_answered_for_any_requested_headers(client: TestClient) -> None:
    response = client.options(
        "/demo/fhir/Observation?patient=t-anna",
        headers={
            "Origin": SANDBOX_ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, x-custom",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "GET" in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-allow-headers"] == "authorization, x-custom"
    assert response.headers["access-control-allow-private-network"] == "true"


def test_the_service_cors_policy_still_applies_outside_the_demo(client: TestClient) -> None:
    response = client.get("/demo/viewer", headers={"Origin": SANDBOX_ORIGIN})
    assert "access-control-allow-origin" not in response.headers


def test_self_link_lists_each_applied_parameter_once(client: TestClient) -> None:
    bundle = _search(client, "Observation?patient=t-anna&_sort=-date,flavour&_count=5000")
    self_link = _link(bundle, "self")
    assert self_link is not None
    query = parse_qs(urlsplit(self_link).query)
    assert query == {"patient": ["t-anna"], "_count": ["1000"], "_sort": ["-date"]}
    (outcome,) = [
        e["resource"] for e in bundle["entry"] if e.get("search", {}).get("mode") == "outcome"
    ]
    assert "_sort=flavour" in outcome["issue"][0]["diagnostics"]


# -- POST [type]/_search -------------------------------------------------------------------------

# How the sandbox posts a search: the prefetch query as a form, from the browser.
SANDBOX_FORM = {
    "Origin": SANDBOX_ORIGIN,
    "Accept": "application/json+fhir",
    "Authorization": "Bearer sandbox-token",
    "Content-Type": "application/x-www-form-urlencoded;charset=utf-8",
}


def _sandbox_form(query: str) -> str:
    """The query's parameters encoded as the browser encodes a form (encodeURIComponent)."""
    return "&".join(f"{k}={quote(v, safe=_URI_SAFE)}" for k, v in parse_qsl(query))


_URI_SAFE = "-_.!~*'()"


@pytest.mark.parametrize(
    "key", ["observations", "medicationRequests", "medicationStatements", "conditions"]
)
def test_post_search_answers_each_prefetch_query_as_get_does(client: TestClient, key: str) -> None:
    template = prefetch_templates(shipped_content())[key]
    filled = template.replace("{{context.patientId}}", "t-anna")
    resource_type, query = filled.split("?", 1)
    expected = _search(client, filled)
    response = client.post(
        f"/demo/fhir/{resource_type}/_search", content=_sandbox_form(query), headers=SANDBOX_FORM
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.json() == expected


def test_post_search_combines_the_query_string_and_the_form(client: TestClient) -> None:
    expected = _search(client, "Observation?patient=t-anna&_count=2&_sort=-date")
    response = client.post(
        "/demo/fhir/Observation/_search?patient=t-anna",
        content="_count=2&_sort=-date",
        headers=SANDBOX_FORM,
    )
    assert response.json() == expected
    # the links are GET URLs the client can follow
    assert _link(expected, "next") == (
        f"{FHIR}/Observation?patient=t-anna&_count=2&_sort=-date&_offset=2"
    )


def test_get_search_on_the_search_path_is_the_same_search(client: TestClient) -> None:
    assert _search(client, "Observation/_search?patient=t-bob") == _search(
        client, "Observation?patient=t-bob"
    )


def test_post_search_without_a_body_searches_the_query_string(client: TestClient) -> None:
    response = client.post("/demo/fhir/Observation/_search?patient=t-bob")
    assert response.status_code == 200
    assert _ids(response.json()) == ["t-bob-mg-1"]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"patient": "t-anna"}'),
        ("application/fhir+json", b'{"resourceType": "Parameters"}'),
        ("multipart/form-data; boundary=x", b"--x--"),
        (None, b"patient=t-anna"),
    ],
)
def test_post_search_takes_only_a_form(
    client: TestClient, content_type: str | None, body: bytes
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/demo/fhir/Observation/_search", content=body, headers=headers)
    assert response.status_code == 415
    named = content_type.split(";")[0] if content_type else "no Content-Type"
    assert response.json() == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "not-supported",
                "diagnostics": "POST _search takes its parameters as "
                f"application/x-www-form-urlencoded, not {named}",
            }
        ],
    }


def test_post_search_errors_are_those_of_get(client: TestClient) -> None:
    bad = client.post("/demo/fhir/Observation/_search", content="date=bad", headers=SANDBOX_FORM)
    assert bad.status_code == 400
    assert bad.json() == client.get("/demo/fhir/Observation?date=bad").json()
    unknown = client.post(
        "/demo/fhir/Encounter/_search", content="patient=t-anna", headers=SANDBOX_FORM
    )
    assert unknown.status_code == 404
    huge = client.post(
        "/demo/fhir/Observation/_search",
        content="patient=" + "x" * 70_000,
        headers=SANDBOX_FORM,
    )
    assert huge.status_code == 413
    not_utf8 = client.post(
        "/demo/fhir/Observation/_search", content=b"patient=\xff", headers=SANDBOX_FORM
    )
    assert not_utf8.status_code == 400


def test_post_search_writes_nothing(client: TestClient) -> None:
    before = _search(client, "Observation?_count=1000")
    form = "resourceType=Observation&id=t-new&patient=t-anna&status=final"
    assert client.post(
        "/demo/fhir/Observation/_search", content=form, headers=SANDBOX_FORM
    ).is_success
    assert _search(client, "Observation?_count=1000") == before
    assert client.get("/demo/fhir/Observation/t-new").status_code == 404
    # a POST anywhere else is still refused
    assert (
        client.post("/demo/fhir/Observation", content=form, headers=SANDBOX_FORM).status_code == 405
    )


def test_the_preflight_of_a_post_search_allows_it(client: TestClient) -> None:
    response = client.options(
        "/demo/fhir/Observation/_search",
        headers={
            "Origin": SANDBOX_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 204
    assert "POST" in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-allow-origin"] == "*"
