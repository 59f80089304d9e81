"""Derived facts: CKD-EPI 2021 eGFR and Payne-corrected calcium."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from ._labs import LabResult, format_number
from ._time import age_in_years


@dataclass(frozen=True, slots=True)
class KidneyFunction:
    egfr: float
    comparator: str | None
    source: str
    result: LabResult

    @property
    def shown(self) -> str:
        return f"{self.comparator or ''}{format_number(round(self.egfr))} mL/min/1.73 m2"


@dataclass(frozen=True, slots=True)
class CorrectedCalcium:
    """Total Ca corrected for albumin, kept in the unit family the Ca was reported in."""

    calcium: LabResult
    albumin: LabResult | None
    corrected_mg_per_dl: float
    corrected_mmol_per_l: float

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


def kidney_function(
    egfr_results: list[LabResult],
    creatinine_results: list[LabResult],
    birth_date: date | None,
    sex: str | None,
) -> KidneyFunction | None:
    """The latest reported eGFR, else CKD-EPI 2021 from the latest creatinine (needs age, sex)."""
    if egfr_results:
        latest = egfr_results[0]
        return KidneyFunction(latest.value, latest.comparator, "reported eGFR", latest)
    if not creatinine_results or birth_date is None or sex not in ("male", "female"):
        return None
    creatinine = creatinine_results[0]
    if creatinine.comparator is not None:
        return None
    age = age_in_years(birth_date, creatinine.effective.date())
    if age < 18:
        return None
    value = ckd_epi_2021(creatinine.canonical, age, sex == "female")
    return KidneyFunction(
        value,
        None,
        f"CKD-EPI 2021 from creatinine {creatinine.shown} on {creatinine.day}",
        creatinine,
    )


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
