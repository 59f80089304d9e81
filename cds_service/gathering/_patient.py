"""One patient per call: resources that name another patient than ``context.patientId``.

A resource names its patient in ``subject`` (Observation, MedicationRequest, MedicationStatement,
Condition, …) or ``patient`` (older and other resource types). Only a literal reference to a
Patient with another id counts as "another patient": a contained, logical (identifier only),
``urn:uuid:`` or display-only reference cannot be checked and is kept, as is a resource that
names no patient at all.
"""

from __future__ import annotations

import re
from typing import Any

from .. import metrics
from ..protocol import Resource, Subject

_FHIR_ID = r"[A-Za-z0-9\-.]{1,64}"
_PATIENT_REFERENCE = re.compile(rf"(?:.*/)?Patient/({_FHIR_ID})(?:/_history/{_FHIR_ID})?")
# Resource types counted by name in the metric; anything else a client sends is "other".
_COUNTED_TYPES = frozenset(
    {"Observation", "MedicationRequest", "MedicationStatement", "Condition", "Patient"}
)


class PatientFilter:
    """Checks resources against the call's patient id."""

    __slots__ = ("_expected", "_patient_id")

    def __init__(self, patient_id: str) -> None:
        self._patient_id = patient_id
        self._expected = f"Patient/{patient_id}"

    def _names_another(self, reference: Any) -> bool:
        if not isinstance(reference, Subject):
            return False
        literal = reference.reference
        if not isinstance(literal, str) or literal == self._expected:
            return False
        match = _PATIENT_REFERENCE.fullmatch(literal)
        return match is not None and match.group(1) != self._patient_id

    def is_other(self, resource: Resource) -> bool:
        """A Patient with another id, or a resource whose subject or patient is one."""
        if resource.resourceType == "Patient":
            patient_id = resource.id
            return isinstance(patient_id, str) and patient_id != self._patient_id
        return self._names_another(resource.subject) or self._names_another(resource.patient)

    def others(self, resources: list[Resource]) -> list[Resource]:
        """The resources about another patient, in one pass."""
        expected = self._expected
        found: list[Resource] = []
        for resource in resources:
            subject = resource.subject
            # The common case, checked first: the subject is the call's patient.
            if (
                type(subject) is Subject
                and subject.reference == expected
                and resource.patient is None
            ):
                continue
            if self.is_other(resource):
                found.append(resource)
        return found

    @staticmethod
    def drop(resources: list[Resource], others: list[Resource]) -> int:
        """Remove ``others`` (found by ``others``) from ``resources`` in place; not counted
        (``count`` does that, once the call is sure to go on)."""
        dropped = {id(resource) for resource in others}
        resources[:] = [resource for resource in resources if id(resource) not in dropped]
        return len(others)

    @staticmethod
    def count(others: list[Resource]) -> None:
        """``cds_other_patient_resources_total`` for resources dropped by ``drop``."""
        for resource in others:
            kind = resource.resourceType
            label = kind if isinstance(kind, str) and kind in _COUNTED_TYPES else "other"
            metrics.OTHER_PATIENT.labels(label).inc()
