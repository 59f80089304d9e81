"""Prefetch templates read as the searches a FHIR server answers, and the partition's code bits."""

from __future__ import annotations

from cds_service.profile import build_profile
from cds_service.simulate._queries import CodeFilter, Query, Selection, parse_query, parse_templates

from ..support import shipped_content

LOINC = "http://loinc.org"


def test_the_shipped_templates_are_all_understood() -> None:
    queries = parse_templates(build_profile(shipped_content()).templates)
    assert all(not q.not_applied for q in queries)
    by_key = {q.key: q for q in queries}
    assert by_key["patient"] == Query("patient", "Patient", read=True)
    observations = by_key["observations"]
    assert observations.resource_type == "Observation"
    assert observations.newest_first and observations.count == 1000
    assert observations.code_matches(((LOINC, "19123-9"),))
    assert not observations.code_matches(((LOINC, "718-7"),))  # haemoglobin: not asked for
    assert by_key["medicationRequests"].statuses is not None


def test_code_tokens_follow_fhir_search() -> None:
    query = parse_query(
        "k",
        "Condition?patient={{context.patientId}}&code=http://snomed.info/sct|46177005,N18.6,urn:x|",
    )
    assert query.codes == CodeFilter(
        pairs=frozenset({("http://snomed.info/sct", "46177005")}),
        codes=frozenset({"N18.6"}),
        systems=frozenset({"urn:x"}),
    )
    assert query.code_matches((("http://snomed.info/sct", "46177005"),))
    assert query.code_matches((("http://hl7.org/fhir/sid/icd-10-cm", "N18.6"),))  # any system
    assert query.code_matches((("urn:x", "anything"),))
    assert not query.code_matches((("http://snomed.info/sct", "N18.6x"),))
    # A Condition's status parameter is its clinical status.
    assert parse_query(
        "k", "Condition?patient={{context.patientId}}&clinical-status=active"
    ).statuses == {"active"}


def test_what_cannot_be_applied_is_said() -> None:
    query = parse_query(
        "k", "Observation?patient={{context.patientId}}&date=ge2026-01-01&category=laboratory"
    )
    assert query.not_applied == ("date=ge2026-01-01", "category=laboratory")
    other = parse_query("k", "Observation?code=http://loinc.org|2601-3")
    assert any("not a search of this patient" in note for note in other.not_applied)
    practitioner = parse_query("k", "Practitioner/{{userPractitionerId}}")
    assert practitioner.read and practitioner.not_applied


def test_the_selection_keeps_a_type_asked_without_codes_and_matches_codes_by_bit() -> None:
    a = parse_templates(
        {"obs": "Observation?patient={{context.patientId}}&code=http://loinc.org|1"}
    )
    b = parse_templates(
        {"obs": "Observation?patient={{context.patientId}}&code=http://loinc.org|2"}
    )
    selection = Selection.of([a, b], frozenset({"ServiceRequest"}))
    assert selection.bits == {(0, "obs"): 0, (1, "obs"): 1}
    assert selection.mask("Observation", ((LOINC, "1"),)) == 0b01
    assert selection.mask("Observation", ((LOINC, "2"), (LOINC, "1"))) == 0b11
    assert not selection.keeps("Observation", 0)
    assert selection.keeps("ServiceRequest", 0)
    tables = selection.tables()["Observation"]
    assert tables.pairs == {(LOINC, "1"): 0b01, (LOINC, "2"): 0b10}
