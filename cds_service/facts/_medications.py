"""Medication resources → medications classified by ingredient."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal, NamedTuple

from ..content import MedicationIndex
from ._time import parse_fhir_datetime

RXNORM_OID = "urn:oid:2.16.840.1.113883.6.88"
_IGNORED_STATUSES = frozenset({"stopped", "completed", "entered-in-error", "cancelled", "revoked"})


class MedicationFact(NamedTuple):
    """A medication the patient takes or is being ordered, with the classes it belongs to.

    A NamedTuple, like ``LabResult``: immutable, and cheap to build once per medication per request.
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


def _codings(concept: object) -> list[Mapping[str, Any]]:
    if not isinstance(concept, dict):
        return []
    codings = concept.get("coding")
    return [c for c in codings if isinstance(c, dict)] if isinstance(codings, list) else []


def _texts(concept: object) -> list[str]:
    texts = [c["display"] for c in _codings(concept) if isinstance(c.get("display"), str)]
    if isinstance(concept, dict) and isinstance(concept.get("text"), str):
        texts.append(concept["text"])
    return texts


class _Classifier:
    """Collects classes from every route the contract allows, remembering which one matched."""

    def __init__(self, index: MedicationIndex) -> None:
        self.index = index
        self.classes: set[str] = set()
        self.matched_by: list[str] = []

    def add_codings(self, concept: object, where: str) -> None:
        for coding in _codings(concept):
            system, code = coding.get("system"), coding.get("code")
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

    def add_medication(self, medication: Mapping[str, Any]) -> None:
        self.add_codings(medication.get("code"), " (Medication.code)")
        texts = _texts(medication.get("code"))
        ingredients = medication.get("ingredient")
        for ingredient in ingredients if isinstance(ingredients, list) else []:
            if not isinstance(ingredient, dict):
                continue
            item = ingredient.get("itemCodeableConcept")
            self.add_codings(item, " (Medication ingredient)")
            texts += _texts(item)
            reference = ingredient.get("itemReference")
            if isinstance(reference, dict) and isinstance(reference.get("display"), str):
                texts.append(reference["display"])
        self.add_names(texts)


def _referenced_medication(
    resource: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    reference = resource.get("medicationReference")
    ref = reference.get("reference") if isinstance(reference, dict) else None
    if not isinstance(ref, str):
        return None
    if ref.startswith("#"):
        contained = resource.get("contained")
        for item in contained if isinstance(contained, list) else []:
            if isinstance(item, dict) and item.get("id") == ref[1:]:
                return item
        return None
    # "Medication/x", an absolute URL, or a versioned ".../Medication/x/_history/2"
    parts = ref.rstrip("/").split("/_history/")[0].split("/")
    return medications.get("/".join(parts[-2:])) if len(parts) >= 2 else None


def _display(resource: Mapping[str, Any], medication: Mapping[str, Any] | None) -> str:
    candidates = _texts(resource.get("medicationCodeableConcept"))[::-1]
    if medication is not None:
        candidates += _texts(medication.get("code"))[::-1]
    reference = resource.get("medicationReference")
    if isinstance(reference, dict) and isinstance(reference.get("display"), str):
        candidates.append(reference["display"])
    return next((text for text in candidates if text.strip()), "unnamed medication")


def classify(
    resource: Mapping[str, Any],
    index: MedicationIndex,
    medications: Mapping[str, Mapping[str, Any]],
) -> tuple[frozenset[str], tuple[str, ...], str]:
    """Classes, how they matched, and the display text of a MedicationRequest/Statement."""
    concept = resource.get("medicationCodeableConcept")
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


def _concept_key(resource: Mapping[str, Any], concept: object) -> tuple[object, ...] | None:
    """What classification reads from a resource without a Medication, as a hashable key."""
    reference = resource.get("medicationReference")
    ref_display = reference.get("display") if isinstance(reference, dict) else None
    if isinstance(reference, dict) and reference.get("reference") is not None:
        return None  # an unresolved reference: rare, not worth caching
    codings = tuple((c.get("system"), c.get("code"), c.get("display")) for c in _codings(concept))
    text = concept.get("text") if isinstance(concept, dict) else None
    key = (codings, text, ref_display)
    try:
        hash(key)
    except TypeError:  # a non-string code or display somewhere: classify without the cache
        return None
    return key


def _classify(
    resource: Mapping[str, Any],
    concept: object,
    medication: Mapping[str, Any] | None,
    index: MedicationIndex,
) -> tuple[frozenset[str], tuple[str, ...], str]:
    classifier = _Classifier(index)
    classifier.add_codings(concept, "")
    if medication is not None:
        classifier.add_medication(medication)
    names = _texts(concept)
    reference = resource.get("medicationReference")
    if isinstance(reference, dict) and isinstance(reference.get("display"), str):
        names.append(reference["display"])
    classifier.add_names(names)
    return (
        frozenset(classifier.classes),
        tuple(classifier.matched_by),
        _display(resource, medication),
    )


def _started(resource: Mapping[str, Any]) -> datetime | None:
    if resource.get("resourceType") == "MedicationStatement":
        period = resource.get("effectivePeriod")
        if isinstance(period, dict):
            return parse_fhir_datetime(period.get("start"))
        return parse_fhir_datetime(resource.get("effectiveDateTime"))
    return parse_fhir_datetime(resource.get("authoredOn"))


def read_medications(
    resources: Iterable[Mapping[str, Any]],
    *,
    origin: Literal["active", "draft"],
    index: MedicationIndex,
    medications: Mapping[str, Mapping[str, Any]],
    active_statuses: frozenset[str],
    selected: frozenset[str] | None = None,
) -> list[MedicationFact]:
    """Active medications (by status) or draft orders; ``selected`` None means all are ordered."""
    facts: list[MedicationFact] = []
    seen: set[tuple[str, str]] = set()
    for resource in resources:
        resource_type = resource.get("resourceType")
        if resource_type not in ("MedicationRequest", "MedicationStatement"):
            continue
        status = resource.get("status")
        status = status if isinstance(status, str) else "unknown"
        if origin == "active" and status not in active_statuses:
            continue
        if origin == "draft" and status in _IGNORED_STATUSES:
            continue
        resource_id = resource.get("id") if isinstance(resource.get("id"), str) else None
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
