"""Observations → normalised lab results, compared in the unit family they were reported in."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import msgspec

from ..content import Content, Threshold, unit_key
from ..protocol import CodeableConcept, Coding, Period, Quantity, Resource
from ._time import parse_fhir_datetime

UCUM = "http://unitsofmeasure.org"
_COMPARATORS = ("<", "<=", ">", ">=")
# "<0.5 mmol/L", "< 0.5 mmol/L", "0.45 mmol/L", ">60 mL/min/1.73m2": a comparator, a number and
# the unit written after it.
_VALUE_STRING = re.compile(r"^\s*(<=|>=|<|>|≤|≥)?\s*(\d+(?:\.\d+)?)\s*(\S.*?)?\s*$")
_UNICODE_COMPARATORS = {"≤": "<=", "≥": ">="}
# No lab value in any unit the rules read comes near this; larger ones are not a measurement.
_LARGEST = 10_000_000


class LabResult(msgspec.Struct, frozen=True, gc=False):
    """One usable result: the reported value and unit, and its canonical equivalents.

    A frozen msgspec Struct rather than a dataclass or NamedTuple: equally immutable, and
    several times cheaper to build, which matters at thousands of results per request.
    ``number`` is the value as the lab wrote it ("3.0", "1.20"): cards quote it with the
    precision the lab reported.
    """

    analyte: str
    value: float
    number: str
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
        return f"{self.comparator or ''}{self.number} {self.unit}"

    @property
    def shown_with_equivalent(self) -> str:
        if unit_key(self.unit) == unit_key(self.canonical_unit):
            return self.shown
        return f"{self.shown} ({self.canonical:.2f} {self.canonical_unit})"

    @property
    def day(self) -> str:
        return self.effective.date().isoformat()


@dataclass(frozen=True, slots=True)
class SkippedResult:
    """A result of a relevant code that could not be used, and why (no patient data).

    ``unreadable`` marks a result the lab did report (usable status, a date) whose value could
    not be read: a card must never say "no result on record" when one of these is the newest.
    """

    analyte: str
    code: str
    reason: str
    unit: str | None = None
    resource_id: str | None = None
    effective: datetime | None = None
    unreadable: bool = False

    @property
    def day(self) -> str:
        return self.effective.date().isoformat() if self.effective else "an unknown date"


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
    value, limit = _compared(result, threshold)
    if result.comparator == "<":
        return value <= limit
    return value < limit


def is_above(result: LabResult, threshold: Threshold) -> bool:
    """True when the result is above the threshold (strictly), in its own unit family.

    ``>x`` means "more than x"; a ``<``/``<=`` value is never read as high.
    """
    if result.comparator in ("<", "<="):
        return False
    value, limit = _compared(result, threshold)
    if result.comparator == ">":
        return value >= limit
    return value > limit


def _compared(result: LabResult, threshold: Threshold) -> tuple[float, float]:
    if result.family == "mass" and threshold.mg_per_dl is not None and result.mg_per_dl is not None:
        return result.mg_per_dl, threshold.mg_per_dl
    return result.canonical, threshold.mmol_per_l


def decimals(value: float, at_least: int) -> str:
    """A number with at least ``at_least`` decimals and no more than it needs (up to 3)."""
    for places in range(at_least, 4):
        text = f"{value:.{places}f}"
        if float(text) == round(value, 3):
            return text
    return f"{value:.3f}"


def threshold_text(family: str, threshold: Threshold) -> str:
    """A threshold as a result of ``family`` prints it ("1.2 mg/dL", "3.0 mg/dL", "0.50 mmol/L")."""
    if family == "mass" and threshold.mg_per_dl is not None:
        return f"{decimals(threshold.mg_per_dl, 1)} mg/dL"
    return f"{decimals(threshold.mmol_per_l, 2)} mmol/L"


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


# A reading: (value, the number as written, comparator, unit to normalise on, unit printed).
_Reading = tuple[float, str, str | None, str | None, str | None]


def _from_quantity(quantity: Quantity) -> _Reading | str:
    value = quantity.value
    kind = type(value)
    # A bool is not a number here; Decimal is how the hook decoder keeps the lab's precision.
    if kind is float:
        number = value
        text = repr(value)
        if "e" in text:
            text = format_number(value)
    elif kind is int:
        number, text = float(value), str(value)
    elif kind is Decimal:
        number, text = float(value), format(value, "f")
    else:
        return "no numeric valueQuantity"
    if not -_LARGEST < number < _LARGEST:  # NaN and infinities fail the comparison too
        return "valueQuantity out of range"
    comparator = quantity.comparator
    printed = quantity.unit
    return (
        number,
        text,
        comparator if comparator in _COMPARATORS else None,
        _unit_of(quantity),
        printed.strip() if type(printed) is str else None,
    )


def _from_string(text: str) -> _Reading | str:
    match = _VALUE_STRING.match(text)
    if match is None:
        return "valueString is not a number with a unit"
    comparator, number, unit = match.groups()
    if not unit:
        return "valueString has no unit"
    comparator = _UNICODE_COMPARATORS.get(comparator, comparator)
    if len(number) > 12:
        return "valueString number out of range"
    return float(number), number, comparator, unit, unit


def read_observation(resource: Resource, content: Content) -> LabResult | SkippedResult | None:
    """Only what the rules need; None when the Observation is not in any value set."""
    return _read(resource, content, content.usable_lab_statuses)


def _read(
    resource: Resource, content: Content, usable_statuses: frozenset[str]
) -> LabResult | SkippedResult | None:
    # Runs once per Observation on every request: kept flat, with positional constructors.
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
    effective = _effective(resource)
    quantity = resource.valueQuantity
    if type(quantity) is Quantity:
        reading = _from_quantity(quantity)
    elif type(text := resource.valueString) is str:
        reading = _from_string(text)
    else:
        reading = "no numeric valueQuantity"
    if isinstance(reading, str):
        return SkippedResult(analyte, code, reading, None, resource_id, effective, True)
    value, number, comparator, unit, printed = reading
    specs = content.units[analyte]
    spec = specs.get(unit_key(unit)) if unit else None
    if spec is None:
        return SkippedResult(analyte, code, "unrecognised unit", unit, resource_id, effective, True)
    if effective is None:
        return SkippedResult(analyte, code, "no effective date", unit, resource_id)
    # Normalise on the UCUM code, but show the unit the lab printed ("mEq/L", not "meq/L").
    if printed and printed != unit:
        same = specs.get(unit_key(printed))
        if same is spec or same == spec:
            unit = printed
    return LabResult(
        analyte,
        value,
        number,
        unit or "",
        comparator,
        value * spec.multiply / spec.divide,
        content.canonical_units[analyte],
        spec.family,
        value / spec.mg_per_dl_divide if spec.family == "mass" else None,
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
