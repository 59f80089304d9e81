"""Medication resources → medications classified by ingredient, route and what they really are."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import msgspec

from ..content import MedicationIndex, words_of
from ..protocol import CodeableConcept, Coding, Dosage, Ingredient, Period, Reference, Resource
from ._time import parse_fhir_datetime

RXNORM_OID = "urn:oid:2.16.840.1.113883.6.88"
_IGNORED_DRAFT_STATUSES = frozenset(
    {"stopped", "completed", "entered-in-error", "cancelled", "revoked"}
)
_HISTORY_STATUSES = frozenset({"completed", "stopped"})

Origin = Literal["active", "history", "draft"]
Route = Literal["oral", "parenteral", "non-systemic"]


class MedicationFact(msgspec.Struct, frozen=True, gc=False):
    """A medication the patient takes, took, or is being ordered, with what it is.

    ``classes`` is empty for a product that is not systemic (an ointment, eye drops): no rule
    counts it; ``excluded`` says why. ``origin`` "history" is a completed or stopped order,
    evidence of earlier use only; a patient is "on" a drug only through ``active`` ones.
    """

    display: str
    ingredients: frozenset[str]
    classes: frozenset[str]
    matched_by: tuple[str, ...]
    status: str
    origin: Origin
    being_ordered: bool
    authored_on: datetime | None
    route: Route | None
    prior_prescription: bool
    resource_type: str
    resource_id: str | None
    excluded: str | None = None

    @property
    def oral(self) -> bool:
        """Taken by mouth, or route unknown (most orders without one are oral)."""
        return self.route in ("oral", None)


@dataclass(frozen=True, slots=True)
class IgnoredOrder:
    """A medication resource the facts leave out on purpose, for the trace."""

    display: str
    reason: str
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


@dataclass(slots=True)
class _Evidence:
    """What the codes, texts and brands of one product say it contains."""

    index: MedicationIndex
    ingredients: dict[str, str] = field(default_factory=dict)
    """ingredient → how it matched"""
    class_names: dict[str, str] = field(default_factory=dict)
    brands: list[tuple[str, str]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def add_codings(self, concept: object, where: str) -> None:
        index = self.index
        for coding in _codings(concept):
            system, code = coding.system, coding.code
            if system not in (index.rxnorm_system, RXNORM_OID) or not isinstance(code, str):
                continue
            if (ingredient := index.ingredient_by_code.get(code)) is not None:
                self.ingredients.setdefault(ingredient, f"RxNorm ingredient {code}{where}")
            for ingredient in index.ingredients_by_product.get(code, ()):
                self.ingredients.setdefault(ingredient, f"RxNorm product {code}{where}")

    def add_texts(self, texts: Iterable[str]) -> None:
        for text in texts:
            self.texts.append(text)
            for match in self.index.match_names(text):
                if match.kind == "ingredient":
                    self.ingredients.setdefault(match.target, f"name '{match.written}'")
                elif match.kind == "class":
                    self.class_names.setdefault(match.target, f"name '{match.written}'")
                elif match.kind == "brand":
                    self.brands.append((match.target, match.written))
                else:
                    self.other.append(match.target)

    def add_medication(self, medication: Resource) -> None:
        self.add_codings(medication.code, " (Medication.code)")
        texts = _texts(medication.code) + _texts(medication.form)
        ingredients = medication.ingredient
        for ingredient in ingredients if isinstance(ingredients, list) else []:
            if not isinstance(ingredient, Ingredient):
                continue
            item = ingredient.itemCodeableConcept
            self.add_codings(item, " (Medication ingredient)")
            texts += _texts(item)
            if (display := _reference_display(ingredient.itemReference)) is not None:
                texts.append(display)
        self.add_texts(texts)

    def resolve_brands(self) -> None:
        # A brand decides only when nothing else names an ingredient: the text or the codes of
        # "simethicone ... [Mylanta Gas]" name its ingredient, so the brand adds nothing.
        if self.ingredients or self.other:
            return
        for brand, written in self.brands:
            for ingredient in self.index.ingredients_by_brand.get(brand, ()):
                self.ingredients.setdefault(ingredient, f"brand '{written}'")


@dataclass(frozen=True, slots=True)
class _Concept:
    """A product's classification before its route: memoised per distinct concept."""

    ingredients: Mapping[str, frozenset[str]]
    """ingredient → its classes"""
    class_names: frozenset[str]
    matched_by: tuple[str, ...]
    texts: tuple[str, ...]
    word_route: Route | None
    display: str


def _word_route(texts: Iterable[str], index: MedicationIndex) -> Route | None:
    """The route dose-form words give: the decisive oral words first ("Oral" in an oral gel),
    then non-systemic forms, then parenteral ones, then oral dose forms (Tablet, Capsule)."""
    routes = index.routes
    joined = " | ".join(texts)
    if routes.oral_decisive.any_in(joined):
        return "oral"
    if routes.non_systemic_words.any_in(joined):
        return "non-systemic"
    if routes.parenteral_words.any_in(joined):
        return "parenteral"
    return "oral" if routes.oral_words.any_in(joined) else None


def _dosages(resource: Resource) -> list[Dosage]:
    found = resource.dosageInstruction
    if not isinstance(found, list):
        found = resource.dosage
    return [d for d in found if isinstance(d, Dosage)] if isinstance(found, list) else []


def _coded_route(resource: Resource, index: MedicationIndex) -> Route | None:
    routes = index.routes
    for dosage in _dosages(resource):
        for coding in _codings(dosage.route):
            if coding.system != routes.system or not isinstance(coding.code, str):
                continue
            if coding.code in routes.non_systemic_codes:
                return "non-systemic"
            if coding.code in routes.parenteral_codes:
                return "parenteral"
            if coding.code in routes.oral_codes:
                return "oral"
    return None


def _route_texts(resource: Resource) -> list[str]:
    return [text for d in _dosages(resource) for text in _texts(d.route)]


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


def _classify_concept(
    resource: Resource, medication: Resource | None, index: MedicationIndex
) -> _Concept:
    concept = resource.medicationCodeableConcept
    evidence = _Evidence(index)
    evidence.add_codings(concept, "")
    if medication is not None:
        evidence.add_medication(medication)
    texts = _texts(concept)
    if (display := _reference_display(resource.medicationReference)) is not None:
        texts.append(display)
    evidence.add_texts(texts)
    evidence.resolve_brands()
    ingredients = {
        name: index.classes_by_ingredient.get(name, frozenset()) for name in evidence.ingredients
    }
    return _Concept(
        ingredients=ingredients,
        class_names=frozenset(evidence.class_names),
        matched_by=(*evidence.ingredients.values(), *evidence.class_names.values()),
        texts=tuple(evidence.texts),
        word_route=_word_route(evidence.texts, index),
        display=_display(resource, medication),
    )


def _refined(
    concept: _Concept, route: Route | None, index: MedicationIndex
) -> tuple[frozenset[str], tuple[str, ...]]:
    """The product's classes once its route and dose form have had their say."""
    by_ingredient = {name: set(classes) for name, classes in concept.ingredients.items()}
    class_names = set(concept.class_names)
    notes: list[str] = []
    joined = " | ".join(concept.texts)
    for refinement in index.refinements:
        triggered = (refinement.route is not None and route == refinement.route) or (
            bool(refinement.words) and _any_word(joined, refinement.words)
        )
        if not triggered:
            continue
        if refinement.ingredient is not None:
            name = refinement.ingredient.lower()
            if name in by_ingredient and refinement.becomes not in by_ingredient[name]:
                by_ingredient[name] = {refinement.becomes}
                notes.append(f"{name} by its route or form is {refinement.becomes}")
        elif refinement.from_class is not None:
            for classes in (*by_ingredient.values(), class_names):
                if refinement.from_class in classes:
                    classes.discard(refinement.from_class)
                    classes.add(refinement.becomes)
                    notes.append(f"{refinement.from_class} by its route is {refinement.becomes}")
    found = frozenset(class_names.union(*by_ingredient.values()))
    return found, tuple(dict.fromkeys(notes))


def _any_word(text: str, phrases: Iterable[str]) -> bool:
    """Whether any phrase appears in the text as whole words."""
    words = words_of(text)
    for phrase in phrases:
        wanted = words_of(phrase)
        size = len(wanted)
        if size and any(words[i : i + size] == wanted for i in range(len(words) - size + 1)):
            return True
    return False


def _route_key(resource: Resource) -> tuple[object, ...]:
    return tuple(
        (tuple((c.system, c.code, c.display) for c in _codings(d.route)), d.route.text)
        if isinstance(d.route, CodeableConcept)
        else None
        for d in _dosages(resource)
    )


def _classify(
    resource: Resource, medication: Resource | None, index: MedicationIndex
) -> tuple[frozenset[str], frozenset[str], tuple[str, ...], str, Route | None]:
    concept = _classify_concept(resource, medication, index)
    route = _coded_route(resource, index) or _word_route(
        (*concept.texts, *_route_texts(resource)), index
    )
    classes, refined = _refined(concept, route, index)
    return (
        frozenset(concept.ingredients),
        classes,
        (*concept.matched_by, *refined),
        concept.display,
        route,
    )


def classify(
    resource: Resource, index: MedicationIndex, medications: Mapping[str, Resource]
) -> tuple[frozenset[str], frozenset[str], tuple[str, ...], str, Route | None]:
    """Ingredients, classes, how they matched, the display text and the route of a product.

    Memoised per distinct concept and route: a product's classification never changes for a
    loaded content, and a chart repeats the same products.
    """
    medication = _referenced_medication(resource, medications)
    key: tuple[object, ...] | None = None
    if medication is None:
        concept_key = _concept_key(resource, resource.medicationCodeableConcept)
        if concept_key is not None:
            key = (concept_key, _route_key(resource))
            try:
                cached = index.concept_cache.get(key)
            except TypeError:  # a non-string route code somewhere: classify without the cache
                key, cached = None, None
            if cached is not None:
                return cached  # type: ignore[no-any-return]
    result = _classify(resource, medication, index)
    if key is not None:
        if len(index.concept_cache) > _CACHE_LIMIT:
            index.concept_cache.clear()
        index.concept_cache[key] = result
    return result


def _started(resource: Resource) -> datetime | None:
    if resource.resourceType == "MedicationStatement":
        period = resource.effectivePeriod
        if isinstance(period, Period):
            return parse_fhir_datetime(period.start)
        return parse_fhir_datetime(resource.effectiveDateTime)
    return parse_fhir_datetime(resource.authoredOn)


def _origin(status: str, draft: bool, active_statuses: frozenset[str]) -> Origin | None:
    if draft:
        return None if status in _IGNORED_DRAFT_STATUSES else "draft"
    if status in active_statuses:
        return "active"
    if status in _HISTORY_STATUSES:
        return "history"
    return None


def read_medications(
    resources: Iterable[Resource],
    *,
    draft: bool,
    index: MedicationIndex,
    medications: Mapping[str, Resource],
    active_statuses: frozenset[str],
    selected: frozenset[str] | None = None,
) -> tuple[list[MedicationFact], list[IgnoredOrder]]:
    """Medications on file (active or history, by status) or draft orders, and what was ignored.

    For drafts, ``selected`` None means every draft is being ordered (order-sign).
    """
    facts: list[MedicationFact] = []
    ignored: list[IgnoredOrder] = []
    seen: set[tuple[str, str]] = set()
    for resource in resources:
        resource_type = resource.resourceType
        if resource_type not in ("MedicationRequest", "MedicationStatement"):
            continue
        status = resource.status if isinstance(resource.status, str) else "unknown"
        origin = _origin(status, draft, active_statuses)
        if origin is None:
            continue
        resource_id = resource.id if isinstance(resource.id, str) else None
        if resource_id is not None:
            if (resource_type, resource_id) in seen:
                continue
            seen.add((resource_type, resource_id))
        ingredients, classes, matched_by, display, route = classify(resource, index, medications)
        if resource.doNotPerform is True:
            ignored.append(
                IgnoredOrder(display, "doNotPerform: an order not to give it", resource_id)
            )
            continue
        excluded = f"not systemic ({display})" if route == "non-systemic" else None
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
                ingredients=ingredients,
                classes=frozenset() if excluded else classes,
                matched_by=(*matched_by, f"would count as {', '.join(sorted(classes))}")
                if excluded and classes
                else matched_by,
                status=status,
                origin=origin,
                being_ordered=being_ordered,
                authored_on=_started(resource),
                route=route,
                prior_prescription=isinstance(resource.priorPrescription, Reference),
                resource_type=str(resource_type),
                resource_id=resource_id,
                excluded=excluded,
            )
        )
    return facts, ignored
