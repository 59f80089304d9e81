"""The in-memory index behind the demo FHIR endpoint: the scenarios' prefetch resources.

A test double for demos and tests, not a FHIR server: it holds what the demo scenarios'
``prefetch`` holds (patients, observations, medication requests and statements, Medication
resources), read-only, and answers the searches the CDS Hooks sandbox and this service make.
The draft orders of a scenario are not stored: they are what the clinician is ordering.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ._search import (
    DateRange,
    Resource,
    SearchError,
    concept_codings,
    date_filter,
    reference_id,
    resource_date,
    split_list,
    token_filter,
)

# Parameters that change the answer's shape, not which resources match.
RESULT_PARAMS = frozenset({"_count", "_offset", "_sort", "_summary"})
# Parameters a server may ignore silently: they do not change what a client gets back.
SILENT_PARAMS = frozenset({"_format", "_pretty", "_total"})
MAX_PAGE = 1000
DEFAULT_PAGE = 100


@dataclass(frozen=True, slots=True)
class TypeSpec:
    """The search parameters one resource type supports here."""

    reference_fields: tuple[str, ...] = ()
    """Where the patient is referenced (``patient``/``subject`` parameters)."""
    code_fields: tuple[str, ...] = ()
    date_fields: tuple[str, ...] = ()
    date_params: frozenset[str] = frozenset()
    string_tokens: Mapping[str, str] = field(default_factory=dict)
    """Token parameters over a plain code element (``status`` → ``status``)."""
    concept_tokens: Mapping[str, str] = field(default_factory=dict)
    """Token parameters over a CodeableConcept element (``category`` → ``category``)."""


_MED_CODE = ("medicationCodeableConcept",)
TYPES: dict[str, TypeSpec] = {
    "Patient": TypeSpec(),
    "Observation": TypeSpec(
        reference_fields=("subject",),
        code_fields=("code",),
        date_fields=("effectiveDateTime", "effectiveInstant", "effectivePeriod", "issued"),
        date_params=frozenset({"date"}),
        string_tokens={"status": "status"},
        concept_tokens={"category": "category"},
    ),
    "MedicationRequest": TypeSpec(
        reference_fields=("subject",),
        code_fields=_MED_CODE,
        date_fields=("authoredOn",),
        date_params=frozenset({"date", "authoredon"}),
        string_tokens={"status": "status", "intent": "intent"},
        concept_tokens={"category": "category"},
    ),
    "MedicationStatement": TypeSpec(
        reference_fields=("subject",),
        code_fields=_MED_CODE,
        date_fields=("effectiveDateTime", "effectivePeriod", "dateAsserted"),
        date_params=frozenset({"date", "effective"}),
        string_tokens={"status": "status"},
        concept_tokens={"category": "category"},
    ),
    "Medication": TypeSpec(code_fields=("code",), string_tokens={"status": "status"}),
    # Never held here, but the sandbox asks for a patient's conditions for its Rx View.
    "Condition": TypeSpec(reference_fields=("subject",), code_fields=("code",)),
}


@dataclass(frozen=True, slots=True)
class SearchResult:
    resources: list[Resource]
    used: list[tuple[str, str]]
    """The parameters applied, for ``Bundle.link`` self."""
    ignored: list[str]
    """Parameters not understood here and ignored (FHIR's lenient handling)."""
    count: int
    offset: int


def _int_param(name: str, value: str, *, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise SearchError(f"{name} must be an integer, not '{value}'") from exc
    if number < minimum:
        raise SearchError(f"{name} must be at least {minimum}")
    return number


class FhirIndex:
    """Resources by type and id, in the order they were added."""

    def __init__(self) -> None:
        self._by_type: dict[str, dict[str, Resource]] = {name: {} for name in TYPES}

    def add(self, resource: Resource) -> bool:
        """Store a resource; False for an unsupported type or an id that is already taken."""
        resource_type, resource_id = resource.get("resourceType"), resource.get("id")
        if not isinstance(resource_id, str) or resource_type not in self._by_type:
            return False
        bucket = self._by_type[str(resource_type)]
        if resource_id in bucket:
            return False
        bucket[resource_id] = resource
        return True

    def supports(self, resource_type: str) -> bool:
        return resource_type in self._by_type

    def read(self, resource_type: str, resource_id: str) -> Resource | None:
        return self._by_type.get(resource_type, {}).get(resource_id)

    def all(self, resource_type: str) -> list[Resource]:
        return list(self._by_type.get(resource_type, {}).values())

    def counts(self) -> dict[str, int]:
        return {name: len(items) for name, items in self._by_type.items() if items}

    def search(self, resource_type: str, params: Sequence[tuple[str, str]]) -> SearchResult:
        """Apply ``params`` (AND across parameters, OR within a comma list)."""
        spec = TYPES[resource_type]
        matches = self.all(resource_type)
        used: list[tuple[str, str]] = []
        ignored: list[str] = []
        count, offset, sort = DEFAULT_PAGE, 0, ""
        for raw_name, raw_value in params:
            value = raw_value.strip()
            if not value:
                continue  # FHIR: a parameter with an empty value is ignored
            name, _, modifier = raw_name.partition(":")
            if name in SILENT_PARAMS:
                continue
            if name == "_count":
                count = min(_int_param(name, value, minimum=0), MAX_PAGE)
                value = str(count)  # the page size applied
            elif name == "_offset":
                offset = _int_param(name, value, minimum=0)
            elif name == "_summary" and value == "count":
                count = 0
            elif name == "_sort":
                sort = value
                continue  # added below with the keys actually applied
            else:
                kept = _filter(spec, name, modifier, value, matches)
                if kept is None:
                    ignored.append(raw_name)
                    continue
                matches = kept
            used.append((raw_name, value))
        sort_used, sort_ignored = _sort(spec, sort, matches)
        ignored += sort_ignored
        if sort_used:
            used.append(("_sort", sort_used))
        return SearchResult(matches, used, ignored, count, offset)


def _patient_of(resource: Resource, fields: tuple[str, ...]) -> str | None:
    for name in fields:
        ref = resource.get(name)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            return reference_id(ref["reference"], "Patient")
    return None


def _filter(
    spec: TypeSpec,
    name: str,
    modifier: str,
    value: str,
    resources: list[Resource],
) -> list[Resource] | None:
    """The resources one parameter keeps, or None when the parameter is not supported."""
    items = split_list(value)
    if modifier and not (name in ("patient", "subject") and modifier == "Patient"):
        return None
    if name == "_id":
        ids = set(items)
        return [r for r in resources if r.get("id") in ids]
    if name in ("patient", "subject") and spec.reference_fields:
        wanted = {reference_id(item, "Patient") for item in items} - {None}
        return [r for r in resources if _patient_of(r, spec.reference_fields) in wanted]
    if name == "code" and spec.code_fields:
        code_matches = token_filter(items)
        return [r for r in resources if code_matches(concept_codings(r, spec.code_fields))]
    if name in spec.string_tokens:
        element = spec.string_tokens[name]
        allowed = set(items)
        return [r for r in resources if r.get(element) in allowed]
    if name in spec.concept_tokens:
        concept_matches = token_filter(items)
        element = spec.concept_tokens[name]
        return [r for r in resources if concept_matches(concept_codings(r, (element,)))]
    if name in spec.date_params:
        date_matches = date_filter(items)
        return [r for r in resources if date_matches(resource_date(r, spec.date_fields))]
    return None


def _sort(spec: TypeSpec, sort: str, resources: list[Resource]) -> tuple[str, list[str]]:
    """Sort in place by the supported keys (last key first, stable); unknown keys are ignored."""
    used: list[str] = []
    ignored: list[str] = []
    for key in split_list(sort):
        field_name = key.removeprefix("-")
        if field_name in spec.date_params or field_name == "_id":
            used.append(key)
        else:
            ignored.append(f"_sort={key}")
    for key in reversed(used):
        descending = key.startswith("-")
        field_name = key.removeprefix("-")
        if field_name == "_id":
            resources.sort(key=lambda r: str(r.get("id", "")), reverse=descending)
            continue
        dated = [(resource_date(r, spec.date_fields), r) for r in resources]
        with_date = [(d, r) for d, r in dated if d is not None]
        without = [r for d, r in dated if d is None]
        with_date.sort(key=lambda pair: _date_key(pair[0]), reverse=descending)
        # Resources without a date come last either way.
        resources[:] = [r for _, r in with_date] + without
    return ",".join(used), ignored


def _date_key(value: DateRange) -> tuple[float, float]:
    return (value.low.timestamp(), value.high.timestamp())


def index_resources(resources: Iterable[Resource]) -> FhirIndex:
    index = FhirIndex()
    for resource in resources:
        index.add(resource)
    return index
