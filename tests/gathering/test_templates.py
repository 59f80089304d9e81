"""CDS Hooks 2.0.1 prefetch tokens."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.gathering import render_template

CONTEXT = {
    "userId": "Practitioner/123",
    "patientId": "pat-1",
    "encounterId": "enc-9",
    "count": 3,
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Patient/{{context.patientId}}", "Patient/pat-1"),
        ("Encounter/{{ context.encounterId }}", "Encounter/enc-9"),
        (
            "MedicationRequest?patient={{context.patientId}}&requester={{context.userId}}",
            "MedicationRequest?patient=pat-1&requester=Practitioner%2F123",
        ),
        ("Practitioner/{{userPractitionerId}}", "Practitioner/123"),
        ("Observation?_count={{context.count}}", "Observation?_count=3"),
        ("Observation?code=http://loinc.org|19123-9", "Observation?code=http://loinc.org|19123-9"),
    ],
)
def test_tokens_are_substituted(template: str, expected: str) -> None:
    assert render_template(template, CONTEXT) == expected


@pytest.mark.parametrize(
    ("patient_id", "encoded"),
    [
        ("a b", "a%20b"),
        ("x/../../admin", "x%2F..%2F..%2Fadmin"),
        ("1&_count=100000", "1%26_count%3D100000"),
        ("ü?#", "%C3%BC%3F%23"),
    ],
)
def test_values_are_url_encoded(patient_id: str, encoded: str) -> None:
    rendered = render_template(
        "Observation?patient={{context.patientId}}", {"patientId": patient_id}
    )
    assert rendered == f"Observation?patient={encoded}"


@pytest.mark.parametrize(
    ("user_id", "token", "expected"),
    [
        ("Practitioner/123", "userPractitionerId", "123"),
        ("PractitionerRole/7", "userPractitionerRoleId", "7"),
        ("Patient/p1", "userPatientId", "p1"),
        ("RelatedPerson/r1", "userRelatedPersonId", "r1"),
        ("https://ehr.example.org/fhir/Practitioner/55", "userPractitionerId", "55"),
        ("PractitionerRole/7", "userPractitionerId", None),
        ("Practitioner/", "userPractitionerId", None),
        ("123", "userPractitionerId", None),
    ],
)
def test_user_tokens_derive_from_user_id(user_id: str, token: str, expected: str | None) -> None:
    rendered = render_template(f"X/{{{{{token}}}}}", {"userId": user_id})
    assert rendered == (None if expected is None else f"X/{expected}")


@pytest.mark.parametrize(
    ("template", "context"),
    [
        ("Encounter/{{context.encounterId}}", {"patientId": "p"}),
        ("Patient/{{context.patientId}}", {"patientId": ""}),
        ("Patient/{{context.patientId}}", {"patientId": None}),
        ("Patient/{{context.patientId}}", {"patientId": True}),
        ("Patient/{{context.patientId}}", {"patientId": {"id": "p"}}),
        ("Patient/{{context.patientId}}", {"patientId": 1.5}),
        ("Patient/{{context.patient.id}}", {"patient": {"id": "p"}}),
        ("Patient/{{patientId}}", {"patientId": "p"}),
        ("Patient/{{context.patientId}", {"patientId": "p"}),
        ("Patient/{{ }}", {"patientId": "p"}),
        ("Practitioner/{{userPractitionerId}}", {}),
        ("Practitioner/{{userPractitionerId}}", {"userId": ["Practitioner/1"]}),
    ],
)
def test_unresolvable_tokens_give_none(template: str, context: dict[str, Any]) -> None:
    assert render_template(template, context) is None


def test_template_without_tokens_is_returned_as_is() -> None:
    assert render_template("Medication?_count=10", {}) == "Medication?_count=10"
