"""Assemble every fact the rules read from the gathered data, and decide the clinical context.

The clinical context (age, body weight, kidney function and failure, the CNI course, what
magnesium the patient already gets, which orders are relevant) is decided here once; rules read
it through the named predicates of ``Facts`` and never re-derive it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from ..content import Content
from ..protocol import CodeableConcept, Coding, Resource
from ._cni import CniCourse, cni_course
from ._kidney import (
    ConditionFact,
    CorrectedCalcium,
    KidneyFunction,
    corrected_calcium,
    kidney_function,
    read_conditions,
)
from ._labs import LabResult, SkippedResult, read_labs
from ._medications import IgnoredOrder, MedicationFact, read_medications
from ._time import age_in_years, parse_fhir_date

# Results stamped slightly in the future (clock skew between systems) still count as current.
_CLOCK_SKEW = timedelta(hours=12)
_ACTIVE_LAB_ORDER = ("draft", "active")
# Classes whose orders make the patient-state topics relevant at order time (4.12).
_RELEVANT_GROUPS = ("cni", "mg_wasting", "needs_mg_spacing", "oral_mg_containing")
_RELEVANT_CLASSES = frozenset({"iv_mg", "k_supplement", "ca_supplement", "digoxin"})


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the rules may read; built once per request, never mutated."""

    hook: str
    now: datetime
    birth_date: date | None
    sex: str | None
    age_years: int | None
    labs: Mapping[str, Sequence[LabResult]]
    current: Mapping[str, LabResult]
    kidney: KidneyFunction | None
    conditions: Sequence[ConditionFact]
    corrected_calcium: CorrectedCalcium | None
    mg_trend: Sequence[LabResult]
    weight: LabResult | None
    active: Sequence[MedicationFact]
    history: Sequence[MedicationFact]
    drafts: Sequence[MedicationFact]
    lab_orders: frozenset[str]
    """Analytes of the lab orders (ServiceRequests) among the draft orders."""
    cni: CniCourse | None
    adult_age: int
    skipped: Sequence[SkippedResult] = field(default=())
    ignored_orders: Sequence[IgnoredOrder] = field(default=())
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)

    # --- medications ----------------------------------------------------------------------

    @property
    def present(self) -> Sequence[MedicationFact]:
        """Active medications and every draft order (context included)."""
        return (*self.active, *self.drafts)

    @property
    def being_ordered(self) -> Sequence[MedicationFact]:
        return tuple(med for med in self.drafts if med.being_ordered)

    def results(self, analyte: str) -> Sequence[LabResult]:
        return self.labs.get(analyte, ())

    def newest_unreadable(self, analyte: str) -> SkippedResult | None:
        """The newest result of ``analyte`` that was reported but could not be read, if it is
        newer than every readable one: then "no result on record" would be wrong."""
        latest = self.now + _CLOCK_SKEW  # as for readable results: none from the future
        unreadable = [s for s in self.skipped if s.analyte == analyte and s.unreadable]
        dated = [s for s in unreadable if s.effective is not None and s.effective <= latest]
        newest = max(dated, key=lambda s: s.effective or self.now, default=None)
        readable = next(iter(self.results(analyte)), None)
        if newest is None or newest.effective is None:
            return None
        if readable is not None and readable.effective >= newest.effective:
            return None
        return newest

    # --- the named clinical predicates ------------------------------------------------------

    @property
    def child(self) -> bool:
        """Younger than the adult age at the time of the request (unknown age: adult)."""
        return self.age_years is not None and self.age_years < self.adult_age

    @property
    def kidney_failure(self) -> bool:
        """eGFR below the kidney-failure line, or an active kidney-failure/dialysis Condition."""
        return bool(self.kidney and self.kidney.failure) or any(
            c.value_set == "kidney_failure" for c in self.conditions
        )

    @property
    def kidney_failure_source(self) -> str | None:
        condition = next((c for c in self.conditions if c.value_set == "kidney_failure"), None)
        if condition is not None:
            return f"Condition: {condition.display}"
        if self.kidney is not None and self.kidney.failure:
            return f"eGFR {self.kidney.shown}, {self.kidney.source}"
        return None

    @property
    def egfr_below_cap(self) -> bool:
        """eGFR below the IV-cap line but not kidney failure (15-29 by default)."""
        return bool(self.kidney and self.kidney.below_cap) and not self.kidney_failure

    @property
    def on_cni(self) -> bool:
        return self.cni is not None

    @property
    def on_tacrolimus(self) -> bool:
        return self.cni is not None and "tacrolimus" in self.cni.classes

    @property
    def on_cyclosporine(self) -> bool:
        return self.cni is not None and "cyclosporine" in self.cni.classes

    @property
    def cni_being_started(self) -> bool:
        return self.cni is not None and self.cni.being_started

    @property
    def taking_oral_mg(self) -> bool:
        """An oral magnesium supplement is active (laxatives and antacids are not supplements)."""
        return any("oral_mg_supplement" in m.classes for m in self.active)

    @property
    def iv_mg_given(self) -> bool:
        """IV magnesium is active or being ordered."""
        return any("iv_mg" in m.classes for m in (*self.active, *self.being_ordered))

    @property
    def mg_being_ordered(self) -> bool:
        return any(m.classes & {"oral_mg_supplement", "iv_mg"} for m in self.being_ordered)

    @property
    def mg_check_ordered(self) -> bool:
        """A serum Mg is among the draft orders: it answers every "check Mg"."""
        return "magnesium" in self.lab_orders

    @property
    def iv_calcium_ordered(self) -> bool:
        return any(
            "ca_supplement" in m.classes and m.route == "parenteral" for m in self.being_ordered
        )

    @property
    def relevant_order(self) -> bool:
        """An order being placed that the patient-state topics are about (4.12)."""
        wanted = set(_RELEVANT_CLASSES)
        for group in _RELEVANT_GROUPS:
            wanted |= self.groups.get(group, frozenset())
        return any(m.classes & wanted for m in self.being_ordered)

    @property
    def order_hook(self) -> bool:
        return self.hook != "patient-view"

    def holds(self, predicate: str) -> bool:
        """A named predicate by name, for rules that choose notes and texts from tables."""
        if predicate not in PREDICATES:
            raise KeyError(f"unknown predicate {predicate!r}")
        return bool(getattr(self, predicate))


PREDICATES = frozenset(
    {
        "child",
        "kidney_failure",
        "egfr_below_cap",
        "on_cni",
        "on_tacrolimus",
        "on_cyclosporine",
        "cni_being_started",
        "taking_oral_mg",
        "iv_mg_given",
        "mg_being_ordered",
        "mg_check_ordered",
        "iv_calcium_ordered",
        "relevant_order",
        "order_hook",
    }
)


def _by_type(resources: Mapping[str, Sequence[Resource]]) -> dict[str, list[Resource]]:
    """Every gathered resource under its resourceType, in order: one pass over the data."""
    grouped: dict[str, list[Resource]] = {}
    for items in resources.values():
        for resource in items:
            kind = resource.resourceType
            if type(kind) is str:
                grouped.setdefault(kind, []).append(resource)
    return grouped


def _current(results: Sequence[LabResult], now: datetime, window: timedelta) -> LabResult | None:
    for result in results:
        if result.effective <= now + _CLOCK_SKEW:
            return result if result.effective >= now - window else None
    return None


def _lab_orders(drafts: Sequence[Resource], content: Content) -> frozenset[str]:
    analytes: set[str] = set()
    for resource in drafts:
        if resource.resourceType != "ServiceRequest" or resource.doNotPerform is True:
            continue
        if resource.status not in _ACTIVE_LAB_ORDER:
            continue
        code = resource.code
        codings = code.coding if isinstance(code, CodeableConcept) else None
        for coding in codings if isinstance(codings, list) else []:
            if isinstance(coding, Coding) and isinstance(coding.code, str):
                analyte = content.analyte_by_code.get((str(coding.system), coding.code))
                if analyte is not None:
                    analytes.add(analyte)
    return frozenset(analytes)


def _selected(hook: str, context: Mapping[str, Any]) -> frozenset[str] | None:
    selections = context.get("selections") if hook == "order-select" else None
    if not isinstance(selections, list):
        return None
    return frozenset(s for s in selections if isinstance(s, str))


@dataclass(frozen=True, slots=True)
class _Labs:
    results: dict[str, list[LabResult]]
    current: dict[str, LabResult]
    skipped: list[SkippedResult]


def _labs(observations: Sequence[Resource], content: Content, now: datetime) -> _Labs:
    """Usable results per analyte (none from the future beyond clock skew), and the current ones."""
    results, skipped = read_labs(observations, content)
    latest = now + _CLOCK_SKEW
    results = {
        analyte: [r for r in found if r.effective <= latest] for analyte, found in results.items()
    }
    window = timedelta(days=content.settings.windows.current_lab_days)
    current = {
        analyte: result
        for analyte, found in results.items()
        if (result := _current(found, now, window)) is not None
    }
    return _Labs(results, current, skipped)


@dataclass(frozen=True, slots=True)
class _Medications:
    active: tuple[MedicationFact, ...]
    history: tuple[MedicationFact, ...]
    drafts: tuple[MedicationFact, ...]
    ignored: tuple[IgnoredOrder, ...]


def _medications(
    on_file: Sequence[Resource],
    draft_orders: Sequence[Resource],
    medications: Mapping[str, Resource],
    content: Content,
    selected: frozenset[str] | None,
) -> _Medications:
    index = content.medications
    statuses = frozenset(content.settings.active_medication_statuses)
    known, ignored = read_medications(
        on_file, draft=False, index=index, medications=medications, active_statuses=statuses
    )
    drafts, ignored_drafts = read_medications(
        draft_orders,
        draft=True,
        index=index,
        medications=medications,
        active_statuses=statuses,
        selected=selected,
    )
    return _Medications(
        active=tuple(m for m in known if m.origin == "active"),
        history=tuple(m for m in known if m.origin == "history"),
        drafts=tuple(drafts),
        ignored=(*ignored, *ignored_drafts),
    )


def build_facts(
    *,
    hook: str,
    context: Mapping[str, Any],
    resources: Mapping[str, Sequence[Resource]],
    draft_orders: Sequence[Resource],
    medications: Mapping[str, Resource],
    content: Content,
    now: datetime,
) -> Facts:
    settings = content.settings
    windows, thresholds = settings.windows, settings.thresholds
    by_type = _by_type(resources)
    labs = _labs(by_type.get("Observation", ()), content, now)
    results = labs.results
    patient = next(iter(by_type.get("Patient", ())), None)
    birth_date = parse_fhir_date(patient.birthDate) if patient else None
    sex = patient.gender if patient and isinstance(patient.gender, str) else None
    trend_start = now - timedelta(days=windows.trend_days)
    meds = _medications(
        [*by_type.get("MedicationRequest", ()), *by_type.get("MedicationStatement", ())],
        draft_orders,
        medications,
        content,
        _selected(hook, context),
    )
    calcium = labs.current.get("calcium")
    weight_start = now - timedelta(days=windows.weight_max_age_days)
    return Facts(
        hook=hook,
        now=now,
        birth_date=birth_date,
        sex=sex,
        age_years=age_in_years(birth_date, now.date()) if birth_date else None,
        labs=results,
        current=labs.current,
        kidney=kidney_function(
            [r for r in results.get("egfr", []) if r.effective >= trend_start],
            [r for r in results.get("creatinine", []) if r.effective >= trend_start],
            birth_date,
            sex,
            cap=thresholds.egfr_iv_cap,
            failure=thresholds.egfr_kidney_failure,
        ),
        conditions=tuple(
            read_conditions(by_type.get("Condition", ()), content.condition_by_code, now)
        ),
        corrected_calcium=corrected_calcium(
            calcium, results.get("albumin", []), windows.albumin_pairing_days
        )
        if calcium
        else None,
        mg_trend=tuple(
            reversed([r for r in results.get("magnesium", []) if r.effective >= trend_start])
        ),
        weight=next(
            (w for w in results.get("body_weight", []) if w.effective >= weight_start), None
        ),
        active=meds.active,
        history=meds.history,
        drafts=meds.drafts,
        lab_orders=_lab_orders(draft_orders, content),
        cni=cni_course(
            cni_classes=content.medications.groups["cni"],
            active=meds.active,
            history=meds.history,
            drafts=meds.drafts,
            labs=results,
            now=now,
            new_days=windows.new_cni_days,
        ),
        adult_age=settings.dosing.adult_age_years,
        skipped=tuple(labs.skipped),
        ignored_orders=meds.ignored,
        groups=content.medications.groups,
    )
