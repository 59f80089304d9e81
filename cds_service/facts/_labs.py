"""Observations → normalised lab results, compared in the unit family they were reported in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import msgspec

from ..content import Content, Threshold
from ..protocol import CodeableConcept, Coding, Period, Quantity, Resource
from ._time import parse_fhir_datetime

UCUM = "http://unitsofmeasure.org"
_COMPARATORS = ("<", "<=", ">", ">=")


class LabResult(msgspec.Struct, frozen=True, gc=False):
    """One usable result: the reported value and unit, and its canonical equivalents.

    A frozen msgspec Struct rather than a dataclass or NamedTuple: equally immutable, and
    several times cheaper to build, which matters at thousands of results per request.
    """

    analyte: str
    value: float
    unit: str
    comparator: str | None
    canonical: float
    canonical_unit: str
    family: str
    mg_per_dl: float | None
    effective: datetime
    status: str
    code: str
    resource_id: str | None

    @property
    def shown(self) -> str:
        """The value as reported, e.g. "<0.4 mmol/L"."""
        return f"{self.comparator or ''}{format_number(self.value)} {self.unit}"

    @property
    def shown_with_equivalent(self) -> str:
        if self.unit.lower() == self.canonical_unit.lower():
            return self.shown
        return f"{self.shown} ({format_number(round(self.canonical, 2))} {self.canonical_unit})"

    @property
    def day(self) -> str:
        return self.effective.date().isoformat()


@dataclass(frozen=True, slots=True)
class SkippedResult:
    """A result of a relevant code that could not be used, and why (no patient data)."""

    analyte: str
    code: str
    reason: str
    unit: str | None = None
    resource_id: str | None = None


def format_number(value: float) -> str:
    return f"{value:g}" if abs(value) >= 0.001 else f"{value:.4f}"


def is_below(result: LabResult, threshold: Threshold) -> bool:
    """True when the result is below the threshold, compared in the result's own unit family.

    A mass result is compared with the mg/dL twin and a molar result with the mmol/L value, so
    a value printed exactly at a threshold is never moved across it by conversion rounding. A
    ``<``/``<=`` comparator means "at most"; a ``>``/``>=`` value is never read as low.
    """
    if result.comparator in (">", ">="):
        return False
    if result.family == "mass" and threshold.mg_per_dl is not None and result.mg_per_dl is not None:
        value, limit = result.mg_per_dl, threshold.mg_per_dl
    else:
        value, limit = result.canonical, threshold.mmol_per_l
    if result.comparator == "<":
        return value <= limit
    return value < limit


def _unit_of(quantity: Quantity) -> str | None:
    code = quantity.code
    if quantity.system == UCUM and isinstance(code, str) and code:
        return code
    unit = quantity.unit
    if isinstance(unit, str) and unit:
        return unit
    return code if isinstance(code, str) and code else None


def _analyte_of(
    resource: Resource, analyte_by_code: Mapping[tuple[str, str], str]
) -> tuple[str, str] | None:
    code = resource.code
    if type(code) is not CodeableConcept:
        return None
    codings = code.coding
    if type(codings) is not list:
        return None
    for coding in codings:
        if type(coding) is not Coding:
            continue
        system, code_value = coding.system, coding.code
        if type(system) is str and type(code_value) is str:
            analyte = analyte_by_code.get((system, code_value))
            if analyte:
                return analyte, code_value
    return None


def _effective(resource: Resource) -> datetime | None:
    when = parse_fhir_datetime(resource.effectiveDateTime)
    if when is None:
        period = resource.effectivePeriod
        if isinstance(period, Period):
            when = parse_fhir_datetime(period.start) or parse_fhir_datetime(period.end)
    return (
        when
        or parse_fhir_datetime(resource.effectiveInstant)
        or parse_fhir_datetime(resource.issued)
    )


def _status_reason(status: object) -> str:
    # Never the repr of a client's array or object: one nested deep enough overflows the stack.
    if status is None or isinstance(status, (str, int, float)):
        return f"status {status!r}"
    return f"status of type {type(status).__name__}"


def read_observation(resource: Resource, content: Content) -> LabResult | SkippedResult | None:
    """Only what the rules need; None when the Observation is not in any value set."""
    return _read(resource, content, content.usable_lab_statuses)


def _read(
    resource: Resource, content: Content, usable_statuses: frozenset[str]
) -> LabResult | SkippedResult | None:
    found = _analyte_of(resource, content.analyte_by_code)
    if found is None:
        return None
    analyte, code = found
    resource_id = resource.id
    if type(resource_id) is not str:
        resource_id = None
    status = resource.status
    if type(status) is not str or status not in usable_statuses:
        return SkippedResult(analyte, code, _status_reason(status), resource_id=resource_id)
    quantity = resource.valueQuantity
    if type(quantity) is not Quantity:
        return SkippedResult(analyte, code, "no numeric valueQuantity", resource_id=resource_id)
    value = quantity.value
    if type(value) is not float and type(value) is not int:  # a bool is not a number here
        return SkippedResult(analyte, code, "no numeric valueQuantity", resource_id=resource_id)
    unit = _unit_of(quantity)
    specs = content.units[analyte]
    spec = specs.get(unit.strip().lower()) if unit else None
    if spec is None or unit is None:
        return SkippedResult(analyte, code, "unrecognised unit", unit, resource_id)
    effective = _effective(resource)
    if effective is None:
        return SkippedResult(analyte, code, "no effective date", unit, resource_id)
    # Normalise on the UCUM code, but show the unit the lab printed ("mEq/L", not "meq/L").
    printed = quantity.unit
    if type(printed) is str and specs.get(printed.strip().lower()) is spec:
        shown_unit = printed.strip()
    else:
        shown_unit = unit
    comparator = quantity.comparator
    if comparator not in _COMPARATORS:
        comparator = None
    number = float(value)
    # Positional: this runs once per Observation on every request.
    return LabResult(
        analyte,
        number,
        shown_unit,
        comparator,
        number * spec.multiply / spec.divide,
        content.canonical_units[analyte],
        spec.family,
        number / spec.mg_per_dl_divide if spec.family == "mass" else None,
        effective,
        status,
        code,
        resource_id,
    )


def read_labs(
    observations: Iterable[Resource], content: Content
) -> tuple[dict[str, list[LabResult]], list[SkippedResult]]:
    """Usable results per analyte, newest first, and the skipped ones."""
    by_analyte: dict[str, list[LabResult]] = {}
    skipped: list[SkippedResult] = []
    seen: set[str] = set()
    usable_statuses = content.usable_lab_statuses
    for resource in observations:
        resource_id = resource.id
        if type(resource_id) is str:
            if resource_id in seen:
                continue
            seen.add(resource_id)
        read = _read(resource, content, usable_statuses)
        if isinstance(read, LabResult):
            by_analyte.setdefault(read.analyte, []).append(read)
        elif read is not None:
            skipped.append(read)
    for results in by_analyte.values():
        results.sort(key=lambda result: result.effective, reverse=True)
    return by_analyte, skipped
