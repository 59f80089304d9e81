"""The schema of ``cards/``: every file is validated strictly so a typo fails loudly."""

from __future__ import annotations

from datetime import date
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
    "body_weight",
)
CONDITIONS = ("kidney_failure",)
MEDICATION_CLASSES = (
    "tacrolimus",
    "cyclosporine",
    "mycophenolate",
    "mtor_inhibitor",
    "mg_al_antacid",
    "oral_mg_supplement",
    "mg_laxative",
    "iv_mg",
    "k_supplement",
    "ca_supplement",
    "ppi",
    "loop_diuretic",
    "thiazide",
    "other_mg_wasting",
    "digoxin",
)
MEDICATION_GROUPS = ("cni", "mg_wasting", "needs_mg_spacing", "oral_mg_containing")
FORMULARY_MEDICATIONS = ("oral_magnesium", "iv_magnesium")
FORMULARY_LAB_ORDERS = ("magnesium", "potassium", "calcium", "creatinine", "tacrolimus_trough")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Threshold(_Strict):
    """A line in mmol/L with its conventional mg/dL twin; a result is compared in its own family."""

    mmol_per_l: float = Field(gt=0)
    mg_per_dl: float | None = Field(default=None, gt=0)


class Thresholds(_Strict):
    mg_critical: Threshold
    mg_low: Threshold
    mg_cni_target: Threshold
    mg_digoxin: Threshold
    mg_decline_floor: Threshold
    mg_high: Threshold
    mg_critical_high: Threshold
    k_low: Threshold
    k_critical: Threshold
    k_sparing_max: Threshold
    ca_total_low: Threshold
    ca_total_critical: Threshold
    ca_ionized_low: Threshold
    ca_ionized_critical: Threshold
    egfr_iv_cap: float = Field(gt=0)
    egfr_kidney_failure: float = Field(gt=0)
    mg_decline_fraction: float = Field(gt=0, lt=1)

    @model_validator(mode="after")
    def _tiers_ordered(self) -> Thresholds:
        # Mass results are tiered on the mg/dL twins, so both families must be ordered.
        for lower, upper in (
            ("mg_critical", "mg_low"),
            ("mg_low", "mg_cni_target"),
            ("mg_cni_target", "mg_high"),
            ("mg_high", "mg_critical_high"),
            ("k_critical", "k_low"),
            ("ca_total_critical", "ca_total_low"),
            ("ca_ionized_critical", "ca_ionized_low"),
        ):
            low, high = getattr(self, lower), getattr(self, upper)
            if not low.mmol_per_l < high.mmol_per_l:
                raise ValueError(f"{lower} must be below {upper}")
            both = low.mg_per_dl is not None and high.mg_per_dl is not None
            if both and not low.mg_per_dl < high.mg_per_dl:
                raise ValueError(f"{lower} must be below {upper} (mg_per_dl)")
        if not self.egfr_kidney_failure < self.egfr_iv_cap:
            raise ValueError("egfr_kidney_failure must be below egfr_iv_cap")
        return self


class Windows(_Strict):
    current_lab_days: int = Field(ge=1)
    critical_max_age_hours: int = Field(ge=1)
    trend_days: int = Field(ge=1)
    monitoring_gap_days: int = Field(ge=1)
    stable_cni_days: int = Field(ge=1)
    stable_monitoring_gap_days: int = Field(ge=1)
    new_cni_days: int = Field(ge=1)
    persistent_low_count: int = Field(ge=2)
    persistent_low_days: int = Field(ge=1)
    weight_max_age_days: int = Field(ge=1)
    albumin_pairing_days: int = Field(ge=0)
    order_session_minutes: int = Field(ge=1)


class Dosing(_Strict):
    """Numbers that dose text quotes and the rules compute with (children's IV dose, IV cap)."""

    paediatric_iv_mg_per_kg_min: float = Field(gt=0)
    paediatric_iv_mg_per_kg_max: float = Field(gt=0)
    paediatric_iv_max_mg: float = Field(gt=0)
    renal_iv_cap_g: float = Field(gt=0)
    renal_iv_cap_hours: int = Field(gt=0)
    adult_age_years: int = Field(ge=1)

    @model_validator(mode="after")
    def _range(self) -> Dosing:
        if not self.paediatric_iv_mg_per_kg_min <= self.paediatric_iv_mg_per_kg_max:
            raise ValueError("paediatric_iv_mg_per_kg_min must not exceed the max")
        return self


class OverrideReason(_Strict):
    code: str = Field(min_length=1)
    display: str = Field(min_length=1)


# A site's own name for a release of its content: letters, digits and . _ + - (e.g. 2.0.0, 2026.12).
CONTENT_VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,31}$"


class SiteSettings(_Strict):
    content_version: str = Field(pattern=CONTENT_VERSION_PATTERN)
    released: date
    thresholds: Thresholds
    windows: Windows
    dosing: Dosing
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


class ConditionCode(_Strict):
    system: str = Field(min_length=1)
    code: str = Field(min_length=1)
    display: str = Field(min_length=1)


class ConditionSet(_Strict):
    display: str
    codes: list[ConditionCode] = Field(min_length=1)


class ValueSets(_Strict):
    analytes: dict[str, Analyte]
    conditions: dict[str, ConditionSet]

    @field_validator("analytes")
    @classmethod
    def _all_analytes(cls, value: dict[str, Analyte]) -> dict[str, Analyte]:
        missing = [name for name in ANALYTES if name not in value]
        unknown = [name for name in value if name not in ANALYTES]
        if missing or unknown:
            raise ValueError(f"missing analytes {missing}, unknown analytes {unknown}")
        return value

    @field_validator("conditions")
    @classmethod
    def _all_conditions(cls, value: dict[str, ConditionSet]) -> dict[str, ConditionSet]:
        missing = [name for name in CONDITIONS if name not in value]
        if missing:
            raise ValueError(f"missing condition value sets {missing}")
        return value


class Ingredient(_Strict):
    code: str | None
    name: str = Field(min_length=2)
    aliases: list[str] = []


class MedicationClass(_Strict):
    display: str
    ingredients: list[Ingredient] = []
    # Names that place a product in the class without naming an ingredient ("magnesium" alone).
    names: list[str] = []

    @model_validator(mode="after")
    def _something_to_match(self) -> MedicationClass:
        if not self.ingredients and not self.names:
            raise ValueError("a class needs ingredients or names")
        return self


class RouteWords(_Strict):
    codes: list[str] = []
    words: list[str] = []
    decisive: list[str] = []
    """Words that settle the route before any other list's words ("Oral" in "oral gel")."""


class Routes(_Strict):
    """How a product's route is read: SNOMED route codes first, then dose-form words."""

    system: str = "http://snomed.info/sct"
    non_systemic: RouteWords
    parenteral: RouteWords
    oral: RouteWords


class Refinement(_Strict):
    """A product's route or dose form changes its class ("magnesium sulfate" taken by mouth)."""

    ingredient: str | None = None
    from_class: str | None = None
    route: Literal["oral", "parenteral"] | None = None
    words: list[str] = []
    becomes: str

    @model_validator(mode="after")
    def _one_subject_and_one_trigger(self) -> Refinement:
        if (self.ingredient is None) == (self.from_class is None):
            raise ValueError("give exactly one of ingredient, from_class")
        if self.route is None and not self.words:
            raise ValueError("give a route or words")
        return self


class Spacing(_Strict):
    """How far apart an oral magnesium product and a drug must be given, from its label."""

    interval: str = Field(min_length=1)
    sources: list[str] = Field(min_length=1)


class Medications(_Strict):
    rxnorm_system: str
    classes: dict[str, MedicationClass]
    groups: dict[str, list[str]]
    other_ingredients: list[str] = []
    products: dict[str, list[str]] = {}
    brands: dict[str, list[str]] = {}
    routes: Routes
    refinements: list[Refinement] = []
    spacing: dict[str, Spacing] = {}

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
        for table, entries in (("products", self.products), ("brands", self.brands)):
            for key, ingredients in entries.items():
                unknown = [name for name in ingredients if name.lower() not in known]
                if unknown:
                    raise ValueError(f"{table}.{key} names unknown ingredients {unknown}")
        for index, refinement in enumerate(self.refinements):
            where = f"refinements.{index}"
            if refinement.ingredient and refinement.ingredient.lower() not in known:
                raise ValueError(f"{where}.ingredient {refinement.ingredient!r} is unknown")
            for name in (refinement.from_class, refinement.becomes):
                if name is not None and name not in self.classes:
                    raise ValueError(f"{where} names unknown class {name!r}")
        spaced = {c for c in self.groups.get("needs_mg_spacing", [])}
        spaced_names = known | spaced
        unknown_spacing = [name for name in self.spacing if name.lower() not in spaced_names]
        if unknown_spacing:
            raise ValueError(f"spacing names unknown ingredients or classes {unknown_spacing}")
        return self


class FormularyEntry(_Strict):
    label: str = Field(min_length=1, max_length=80)
    short: str | None = None
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


SourceKind = Literal["label", "guideline", "study", "review", "summary"]
# How authoritative each kind is, for the card's ``source.label``: lower is stronger.
SOURCE_RANK: dict[str, int] = {"label": 0, "guideline": 1, "study": 2, "review": 3, "summary": 4}


class Source(_Strict):
    label: str = Field(min_length=1, max_length=200)
    short: str = Field(min_length=1, max_length=40)
    kind: SourceKind
    url: str | None = None
    # Transplant sources are cited only for a patient on a calcineurin inhibitor.
    transplant: bool = False


class Sources(_Strict):
    sources: dict[str, Source]


class AdviceText(_Strict):
    """Magnesium repletion text shared by every card that advises magnesium (``advice.yaml``)."""

    actions: dict[str, str]
    cautions: dict[str, str]
    lines: dict[str, str]


class Link(_Strict):
    label: str
    url: str


class Mechanism(_Strict):
    mechanism: str
    alternative: str


class TopicPage(_Strict):
    """The topic's public page: Jinja templates rendered with the live settings (thresholds,
    windows), so a page always states the values the rules use."""

    purpose: str = Field(min_length=1)
    for_whom: str = Field(min_length=1)
    fires_when: str = Field(min_length=1)
    advises: str = Field(min_length=1)


class Topic(_Strict):
    code: str = Field(pattern=r"^[a-z0-9-]+$")
    display: str
    enabled: bool = True
    # silent: the card is evaluated and recorded in the audit, never returned to the EHR.
    mode: Literal["live", "silent"] = "live"
    # Hours an override keeps the topic quiet for that patient, per indicator (absent: never).
    snooze_hours: dict[Indicator, float] = {}
    summary: dict[Indicator, str] = Field(min_length=1)
    detail: str
    notes: dict[str, str] = {}
    links: list[Link] = []
    override_reasons: list[OverrideReason] | None = None
    mechanisms: dict[str, Mechanism] = {}
    page: TopicPage

    @field_validator("snooze_hours")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [key for key, hours in value.items() if not hours > 0]
        if bad:
            raise ValueError(f"snooze hours must be positive: {bad}")
        return value
