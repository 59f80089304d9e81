"""Kidney function (the newest of reported and creatinine-derived eGFR), kidney failure, and
Payne-corrected calcium."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ..protocol import CodeableConcept, Coding, Resource
from ._labs import LabResult, format_number
from ._time import age_in_years, parse_fhir_datetime

REPORTED = "reported eGFR"
_ACTIVE_CLINICAL = ("active", "recurrence", "relapse")
_REFUTED = ("entered-in-error", "refuted")


@dataclass(frozen=True, slots=True)
class KidneyFunction:
    """The eGFR the rules use, where it came from, and where it falls against the lines."""

    egfr: float
    comparator: str | None
    source: str
    result: LabResult
    derived: bool
    below_cap: bool
    """eGFR below the IV-cap line (30): reduced doses, no fixed-dose order."""
    failure: bool
    """eGFR below the kidney-failure line (15)."""

    shown: str
    """The eGFR as cards print it, never rounded across a line it is compared with."""

    @property
    def when(self) -> datetime:
        return self.result.effective


@dataclass(frozen=True, slots=True)
class CorrectedCalcium:
    """Total Ca corrected for albumin, kept in the unit family the Ca was reported in."""

    calcium: LabResult
    albumin: LabResult | None
    corrected_mg_per_dl: float
    corrected_mmol_per_l: float

    @property
    def shown_reported(self) -> str:
        """In the unit family the Ca was reported in only, for summaries."""
        if self.calcium.family == "mass":
            return f"{format_number(round(self.corrected_mg_per_dl, 1))} mg/dL"
        return f"{self.corrected_mmol_per_l:.2f} mmol/L"

    @property
    def shown(self) -> str:
        mg = format_number(round(self.corrected_mg_per_dl, 1))
        mmol = format_number(round(self.corrected_mmol_per_l, 2))
        if self.calcium.family == "mass":
            return f"{mg} mg/dL ({mmol} mmol/L)"
        return f"{mmol} mmol/L ({mg} mg/dL)"


def ckd_epi_2021(creatinine_mg_dl: float, age: int, female: bool) -> float:
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    ratio = creatinine_mg_dl / kappa
    egfr: float = 142 * min(ratio, 1) ** alpha * max(ratio, 1) ** -1.200 * 0.9938**age
    return egfr * 1.012 if female else egfr


def _below(value: float, comparator: str | None, line: float) -> bool:
    # As for lab thresholds: "<30" is below 30, ">20" is never read as low.
    if comparator in (">", ">="):
        return False
    return value <= line if comparator == "<" else value < line


def _derived(
    creatinine: LabResult, birth_date: date | None, sex: str | None
) -> tuple[float, str] | None:
    if birth_date is None or sex not in ("male", "female") or creatinine.comparator is not None:
        return None
    age = age_in_years(birth_date, creatinine.effective.date())
    if age < 18:  # CKD-EPI is an adult equation
        return None
    value = ckd_epi_2021(creatinine.canonical, age, sex == "female")
    return value, f"CKD-EPI 2021 from creatinine {creatinine.shown} on {creatinine.day}"


def _shown(value: float, comparator: str | None, lines: tuple[float, ...]) -> str:
    # A whole number reads best, unless rounding would cross a line (14.9 is not "15" on a
    # card that calls it kidney failure): then one decimal, as reported or computed.
    whole = round(value)
    crosses = any((whole < line) != (value < line) for line in lines)
    number = format_number(round(value, 1) if crosses else whole)
    return f"{comparator or ''}{number} mL/min/1.73 m2"


def kidney_function(
    egfr_results: Iterable[LabResult],
    creatinine_results: Iterable[LabResult],
    birth_date: date | None,
    sex: str | None,
    *,
    cap: float,
    failure: float,
) -> KidneyFunction | None:
    """The most recent of the reported eGFR and the eGFR computed from creatinine (CKD-EPI 2021).

    A creatinine newer than the reported eGFR wins: yesterday's creatinine says more than a
    five-month-old eGFR. At the same time, the reported eGFR wins.
    """
    reported = next(iter(egfr_results), None)
    creatinine = next(iter(creatinine_results), None)
    derived = _derived(creatinine, birth_date, sex) if creatinine is not None else None
    newer = reported is None or (
        creatinine is not None and creatinine.effective > reported.effective
    )
    if creatinine is not None and derived is not None and newer:
        value, source = derived
        shown = _shown(value, None, (cap, failure))
        return KidneyFunction(
            value, None, source, creatinine, True, value < cap, value < failure, shown
        )
    if reported is None:
        return None
    return KidneyFunction(
        reported.value,
        reported.comparator,
        REPORTED,
        reported,
        False,
        _below(reported.value, reported.comparator, cap),
        _below(reported.value, reported.comparator, failure),
        _shown(reported.value, reported.comparator, (cap, failure)),
    )


@dataclass(frozen=True, slots=True)
class ConditionFact:
    """An active Condition in one of the condition value sets."""

    value_set: str
    display: str
    code: str
    resource_id: str | None


def _codings(concept: object) -> list[Coding]:
    if not isinstance(concept, CodeableConcept) or not isinstance(concept.coding, list):
        return []
    return [c for c in concept.coding if isinstance(c, Coding)]


def _status_codes(concept: object) -> set[str]:
    return {c.code for c in _codings(concept) if isinstance(c.code, str)}


def _abated(condition: Resource, now: datetime) -> bool:
    when = parse_fhir_datetime(condition.abatementDateTime)
    if when is not None:
        return when <= now
    return any(
        value is not None
        for value in (condition.abatementPeriod, condition.abatementAge, condition.abatementString)
    )


def read_conditions(
    resources: Iterable[Resource], value_sets: Mapping[tuple[str, str], str], now: datetime
) -> list[ConditionFact]:
    """Active Conditions in the value sets. No clinicalStatus and no abatement counts as active."""
    found: list[ConditionFact] = []
    for resource in resources:
        if resource.resourceType != "Condition":
            continue
        if _status_codes(resource.verificationStatus) & set(_REFUTED):
            continue
        clinical = _status_codes(resource.clinicalStatus)
        if clinical and not clinical & set(_ACTIVE_CLINICAL):
            continue
        if not clinical and _abated(resource, now):
            continue
        for coding in _codings(resource.code):
            system, code = coding.system, coding.code
            if isinstance(system, str) and isinstance(code, str):
                value_set = value_sets.get((system, code))
                if value_set is not None:
                    display = coding.display if isinstance(coding.display, str) else code
                    rid = resource.id if isinstance(resource.id, str) else None
                    found.append(ConditionFact(value_set, display, code, rid))
                    break
    return found


def corrected_calcium(
    calcium: LabResult, albumins: list[LabResult], pairing_days: int
) -> CorrectedCalcium:
    """Payne: Ca (mg/dL) + 0.8 × (4.0 − albumin g/dL) with an albumin drawn near the Ca."""
    window = timedelta(days=pairing_days)
    paired = [a for a in albumins if abs(a.effective - calcium.effective) <= window]
    albumin = min(paired, key=lambda a: abs(a.effective - calcium.effective), default=None)
    ca_mg = calcium.mg_per_dl if calcium.mg_per_dl is not None else calcium.canonical * 4.008
    ca_mmol = calcium.canonical
    if albumin is None:
        return CorrectedCalcium(calcium, None, ca_mg, ca_mmol)
    correction_mg = 0.8 * (4.0 - albumin.canonical)
    return CorrectedCalcium(
        calcium, albumin, ca_mg + correction_mg, ca_mmol + correction_mg / 4.008
    )
