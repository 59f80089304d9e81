"""The schema of ``cards/``: every file is validated strictly so a typo fails loudly."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Indicator = Literal["info", "warning", "critical"]
INDICATOR_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}

ANALYTES = (
    "magnesium",
    "potassium",
    "calcium",
    "ionized_calcium",
    "albumin",
    "creatinine",
    "egfr",
    "tacrolimus_level",
    "cyclosporine_level",
)
MEDICATION_CLASSES = (
    "tacrolimus",
    "cyclosporine",
    "mycophenolate",
    "mtor_inhibitor",
    "mg_al_antacid",
    "oral_mg_supplement",
    "iv_mg",
    "k_supplement",
    "ca_supplement",
    "ppi",
    "loop_diuretic",
    "thiazide",
    "other_mg_wasting",
    "digoxin",
)
MEDICATION_GROUPS = ("cni", "mg_wasting", "needs_mg_spacing")
FORMULARY_MEDICATIONS = ("oral_magnesium", "iv_magnesium")
FORMULARY_LAB_ORDERS = ("magnesium", "tacrolimus_trough")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Threshold(_Strict):
    mmol_per_l: float = Field(gt=0)
    mg_per_dl: float | None = Field(default=None, gt=0)


class Thresholds(_Strict):
    mg_critical: Threshold
    mg_low: Threshold
    mg_cni_target: Threshold
    mg_digoxin: Threshold
    k_low: Threshold
    k_critical: Threshold
    ca_total_low: Threshold
    ca_ionized_low: Threshold
    egfr_iv_cap: float = Field(gt=0)
    mg_decline_fraction: float = Field(gt=0, lt=1)

    @model_validator(mode="after")
    def _tiers_ordered(self) -> Thresholds:
        if not self.mg_critical.mmol_per_l < self.mg_low.mmol_per_l:
            raise ValueError("mg_critical must be below mg_low")
        # Mass results are tiered on the mg/dL twins, so they must be ordered the same way.
        critical_mg, low_mg = self.mg_critical.mg_per_dl, self.mg_low.mg_per_dl
        if critical_mg is not None and low_mg is not None and not critical_mg < low_mg:
            raise ValueError("mg_critical must be below mg_low (mg_per_dl)")
        if not self.k_critical.mmol_per_l < self.k_low.mmol_per_l:
            raise ValueError("k_critical must be below k_low")
        return self


class Windows(_Strict):
    current_lab_days: int = Field(ge=1)
    trend_days: int = Field(ge=1)
    monitoring_gap_days: int = Field(ge=1)
    new_cni_days: int = Field(ge=1)
    albumin_pairing_days: int = Field(ge=0)
    order_session_minutes: int = Field(ge=1)


class OverrideReason(_Strict):
    code: str = Field(min_length=1)
    display: str = Field(min_length=1)


class SiteSettings(_Strict):
    thresholds: Thresholds
    windows: Windows
    accept_preliminary_results: bool = False
    active_medication_statuses: list[Literal["active", "on-hold"]] = ["active"]
    max_cards: int = Field(default=5, ge=1, le=20)
    default_override_reasons: list[OverrideReason] = Field(min_length=1)
    override_reason_system: str = Field(min_length=1)


class UnitSpec(_Strict):
    family: Literal["mass", "molar", "rate"]
    multiply: float = Field(default=1, gt=0)
    divide: float = Field(default=1, gt=0)
    mg_per_dl_divide: float = Field(default=1, gt=0)


class Analyte(_Strict):
    display: str
    short: str
    system: str = "http://loinc.org"
    codes: list[str] = Field(min_length=1)
    canonical_unit: str
    units: dict[str, UnitSpec] = Field(min_length=1)


class ValueSets(_Strict):
    analytes: dict[str, Analyte]

    @field_validator("analytes")
    @classmethod
    def _all_analytes(cls, value: dict[str, Analyte]) -> dict[str, Analyte]:
        missing = [name for name in ANALYTES if name not in value]
        unknown = [name for name in value if name not in ANALYTES]
        if missing or unknown:
            raise ValueError(f"missing analytes {missing}, unknown analytes {unknown}")
        return value


class Ingredient(_Strict):
    code: str | None
    name: str = Field(min_length=2)


class MedicationClass(_Strict):
    display: str
    ingredients: list[Ingredient] = Field(min_length=1)
    names: list[str] = []


class Medications(_Strict):
    rxnorm_system: str
    classes: dict[str, MedicationClass]
    groups: dict[str, list[str]]
    products: dict[str, list[str]] = {}

    @model_validator(mode="after")
    def _references_resolve(self) -> Medications:
        missing = [name for name in MEDICATION_CLASSES if name not in self.classes]
        if missing:
            raise ValueError(f"classes missing: {missing}")
        for group in MEDICATION_GROUPS:
            if group not in self.groups:
                raise ValueError(f"groups.{group} is missing")
        for group, members in self.groups.items():
            unknown = [member for member in members if member not in self.classes]
            if unknown:
                raise ValueError(f"groups.{group} names unknown classes {unknown}")
        known = {ing.name.lower() for cls in self.classes.values() for ing in cls.ingredients}
        for code, ingredients in self.products.items():
            unknown = [name for name in ingredients if name.lower() not in known]
            if unknown:
                raise ValueError(f"products.{code} names unknown ingredients {unknown}")
        return self


class FormularyEntry(_Strict):
    label: str = Field(min_length=1, max_length=80)
    system: str
    code: str | None
    display: str
    dosage: str | None = None


class Formulary(_Strict):
    medications: dict[str, FormularyEntry]
    lab_orders: dict[str, FormularyEntry]

    @model_validator(mode="after")
    def _required_entries(self) -> Formulary:
        missing = [f"medications.{n}" for n in FORMULARY_MEDICATIONS if n not in self.medications]
        missing += [f"lab_orders.{n}" for n in FORMULARY_LAB_ORDERS if n not in self.lab_orders]
        if missing:
            raise ValueError(f"entries missing: {missing}")
        return self


class Source(_Strict):
    label: str = Field(min_length=1, max_length=200)
    url: str | None = None


class Sources(_Strict):
    sources: dict[str, Source]


class Link(_Strict):
    label: str
    url: str


class Mechanism(_Strict):
    mechanism: str
    alternative: str
    alternative_short: str


class Topic(_Strict):
    code: str = Field(pattern=r"^[a-z0-9-]+$")
    display: str
    enabled: bool = True
    # silent: the card is evaluated and recorded in the audit, never returned to the EHR.
    mode: Literal["live", "silent"] = "live"
    snooze_hours: float | None = Field(default=None, gt=0)
    sources: list[str] = Field(min_length=1)
    summary: dict[Indicator, str] = Field(min_length=1)
    detail: str
    notes: dict[str, str] = {}
    links: list[Link] = []
    override_reasons: list[OverrideReason] | None = None
    mechanisms: dict[str, Mechanism] = {}
