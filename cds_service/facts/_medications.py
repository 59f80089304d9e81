"""Medication resources → medications classified by ingredient."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Literal

import msgspec

from ..content import MedicationIndex
from ..protocol import CodeableConcept, Coding, Ingredient, Period, Reference, Resource
from ._time import parse_fhir_datetime

RXNORM_OID = "urn:oid:2.16.840.1.113883.6.88"
_IGNORED_STATUSES = frozenset({"stopped", "completed", "entered-in-error", "cancelled", "revoked"})


class MedicationFact(msgspec.Struct, frozen=True, gc=False):
    """A medication the patient takes or is being ordered, with the classes it belongs to.

    A frozen Struct, like ``LabResult``: immutable, and cheap to build once per medication.
    """

    display: str
    classes: frozenset[str]
    matched_by: tuple[str, ...]
    status: str
    origin: Literal["active", "draft"]
    being_ordered: bool
    authored_on: datetime | None
    resource_type: str
    resource_id: str | None


def _codings(concept: object) -> list[Coding]:
    if not isinstance(concept, CodeableConcept):
        return []
    codings = concept.coding
    return [c for c in codings if isinstance(c, Coding)] if isinstance(codings, list) else []


def _texts(concept: object) -> list[str]:
    texts = [c.display for c in _codings(concept) if isinstance(c.display, str)]
    if isinstance(concept, CodeableConcept) and isinstance(concept.text, str):
        texts.append(concept.text)
    return texts


def _reference_display(reference: object) -> str | None:
    if isinstance(reference, Reference) and isinstance(reference.display, str):
        return reference.display
    return None


class _Classifier:
    """Collects classes from every route the contract allows, remembering which one matched."""

    def __init__(self, index: MedicationIndex) -> None:
        self.index = index
        self.classes: set[str] = set()
        self.matched_by: list[str] = []

    def add_codings(self, concept: object, where: str) -> None:
        for coding in _codings(concept):
            system, code = coding.system, coding.code
            if system not in (self.index.rxnorm_system, RXNORM_OID) or not isinstance(code, str):
                continue
            if found := self.index.class_by_ingredient_code.get(code):
                self.classes |= found
                self.matched_by.append(f"RxNorm ingredient {code}{where}")
            if found := self.index.class_by_product_code.get(code):
                self.classes |= found
                self.matched_by.append(f"RxNorm product {code}{where}")

    def add_names(self, texts: Iterable[str]) -> None:
        for text in texts:
            for name, found in self.index.match_names(text):
                if not found <= self.classes:
                    self.classes |= found
                    self.matched_by.append(f"name '{name}'")

    def add_medication(self, medication: Resource) -> None:
        self.add_codings(medication.code, " (Medication.code)")
        texts = _texts(medication.code)
        ingredients = medication.ingredient
        for ingredient in ingredients if isinstance(ingredients, list) else []:
            if not isinstance(ingredient, Ingredient):
                continue
            item = ingredient.itemCodeableConcept
            self.add_codings(item, " (Medication ingredient)")
            texts += _texts(item)
            if (display := _reference_display(ingredient.itemReference)) is not None:
                texts.append(display)
        self.add_names(texts)


def _referenced_medication(
    resource: Resource, medications: Mapping[str, Resource]
) -> Resource | None:
    reference = resource.medicationReference
    ref = reference.reference if isinstance(reference, Reference) else None
    if not isinstance(ref, str):
        return None
    if ref.startswith("#"):
        contained = resource.contained
        for item in contained if isinstance(contained, list) else []:
            if isinstance(item, Resource) and item.id == ref[1:]:
                return item
        return None
    # "Medication/x", an absolute URL, or a versioned ".../Medication/x/_history/2"
    parts = ref.rstrip("/").split("/_history/")[0].split("/")
    return medications.get("/".join(parts[-2:])) if len(parts) >= 2 else None


def _display(resource: Resource, medication: Resource | None) -> str:
    candidates = _texts(resource.medicationCodeableConcept)[::-1]
    if medication is not None:
        candidates += _texts(medication.code)[::-1]
    if (display := _reference_display(resource.medicationReference)) is not None:
        candidates.append(display)
    return next((text for text in candidates if text.strip()), "unnamed medication")


def classify(
    resource: Resource,
    index: MedicationIndex,
    medications: Mapping[str, Resource],
) -> tuple[frozenset[str], tuple[str, ...], str]:
    """Classes, how they matched, and the display text of a MedicationRequest/Statement."""
    concept = resource.medicationCodeableConcept
    medication = _referenced_medication(resource, medications)
    key = _concept_key(resource, concept) if medication is None else None
    if key is not None and (cached := index.concept_cache.get(key)) is not None:
        return cached  # type: ignore[no-any-return]
    result = _classify(resource, concept, medication, index)
    if key is not None:
        if len(index.concept_cache) > _CACHE_LIMIT:
            index.concept_cache.clear()
        index.concept_cache[key] = result
    return result


_CACHE_LIMIT = 20_000


def _concept_key(resource: Resource, concept: object) -> tuple[object, ...] | None:
    """What classification reads from a resource without a Medication, as a hashable key."""
    reference = resource.medicationReference
    ref_display = reference.display if isinstance(reference, Reference) else None
    if isinstance(reference, Reference) and reference.reference is not None:
        return None  # an unresolved reference: rare, not worth caching
    codings = tuple((c.system, c.code, c.display) for c in _codings(concept))
    text = concept.text if isinstance(concept, CodeableConcept) else None
    key = (codings, text, ref_display)
    try:
        hash(key)
    except TypeError:  # a non-string code or display somewhere: classify without the cache
        return None
    return key


def _classify(
    resource: Resource,
    concept: object,
    medication: Resource | None,
    index: MedicationIndex,
) -> tuple[frozenset[str], tuple[str, ...], str]:
    classifier = _Classifier(index)
    classifier.add_codings(concept, "")
    if medication is not None:
        classifier.add_medication(medication)
    names = _texts(concept)
    if (display := _reference_display(resource.medicationReference)) is not None:
        names.append(display)
    classifier.add_names(names)
    return (
        frozenset(classifier.classes),
        tuple(classifier.matched_by),
        _display(resource, medication),
    )


def _started(resource: Resource) -> datetime | None:
    if resource.resourceType == "MedicationStatement":
        period = resource.effectivePeriod
        if isinstance(period, Period):
            return parse_fhir_datetime(period.start)
        return parse_fhir_datetime(resource.effectiveDateTime)
    return parse_fhir_datetime(resource.authoredOn)


def read_medications(
    resources: Iterable[Resource],
    *,
    origin: Literal["active", "draft"],
    index: MedicationIndex,
    medications: Mapping[str, Resource],
    active_statuses: frozenset[str],
    selected: frozenset[str] | None = None,
) -> list[MedicationFact]:
    """Active medications (by status) or draft orders; ``selected`` None means all are ordered."""
    facts: list[MedicationFact] = []
    seen: set[tuple[str, str]] = set()
    for resource in resources:
        resource_type = resource.resourceType
        if resource_type not in ("MedicationRequest", "MedicationStatement"):
            continue
        status = resource.status
        status = status if isinstance(status, str) else "unknown"
        if origin == "active" and status not in active_statuses:
            continue
        if origin == "draft" and status in _IGNORED_STATUSES:
            continue
        resource_id = resource.id if isinstance(resource.id, str) else None
        if resource_id is not None:
            if (resource_type, resource_id) in seen:
                continue
            seen.add((resource_type, resource_id))
        classes, matched_by, display = classify(resource, index, medications)
        being_ordered = origin == "draft" and (
            selected is None
            or (
                resource_id is not None
                and (f"{resource_type}/{resource_id}" in selected or resource_id in selected)
            )
        )
        facts.append(
            MedicationFact(
                display=display,
                classes=classes,
                matched_by=matched_by,
                status=status,
                origin=origin,
                being_ordered=being_ordered,
                authored_on=_started(resource),
                resource_type=str(resource_type),
                resource_id=resource_id,
            )
        )
    return facts
