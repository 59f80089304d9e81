"""Assemble every fact the rules read from the gathered data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from ..content import Content
from ..protocol import Resource
from ._kidney import CorrectedCalcium, KidneyFunction, corrected_calcium, kidney_function
from ._labs import LabResult, SkippedResult, read_labs
from ._medications import MedicationFact, read_medications
from ._time import parse_fhir_date

# Results stamped slightly in the future (clock skew between systems) still count as current.
_CLOCK_SKEW = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the rules may read; built once per request, never mutated."""

    hook: str
    now: datetime
    birth_date: date | None
    sex: str | None
    labs: Mapping[str, Sequence[LabResult]]
    current: Mapping[str, LabResult]
    kidney: KidneyFunction | None
    corrected_calcium: CorrectedCalcium | None
    mg_trend: Sequence[LabResult]
    active: Sequence[MedicationFact]
    drafts: Sequence[MedicationFact]
    cni_start: datetime | None
    skipped: Sequence[SkippedResult] = field(default=())

    @property
    def present(self) -> Sequence[MedicationFact]:
        """Active medications and every draft order (context included)."""
        return (*self.active, *self.drafts)

    @property
    def being_ordered(self) -> Sequence[MedicationFact]:
        return tuple(med for med in self.drafts if med.being_ordered)

    def results(self, analyte: str) -> Sequence[LabResult]:
        return self.labs.get(analyte, ())


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
    windows = content.settings.windows
    by_type = _by_type(resources)
    labs, skipped = read_labs(by_type.get("Observation", ()), content)
    latest = now + _CLOCK_SKEW
    labs = {
        analyte: [r for r in results if r.effective <= latest] for analyte, results in labs.items()
    }
    current_window = timedelta(days=windows.current_lab_days)
    current = {
        analyte: result
        for analyte, results in labs.items()
        if (result := _current(results, now, current_window)) is not None
    }
    patient = next(iter(by_type.get("Patient", ())), None)
    birth_date = parse_fhir_date(patient.birthDate) if patient else None
    sex = patient.gender if patient and isinstance(patient.gender, str) else None
    trend_start = now - timedelta(days=windows.trend_days)

    kidney = kidney_function(
        [r for r in labs.get("egfr", []) if r.effective >= trend_start],
        [r for r in labs.get("creatinine", []) if r.effective >= trend_start],
        birth_date,
        sex,
    )
    calcium = current.get("calcium")
    corrected = (
        corrected_calcium(calcium, labs.get("albumin", []), windows.albumin_pairing_days)
        if calcium
        else None
    )
    index = content.medications
    active_statuses = frozenset(content.settings.active_medication_statuses)
    active = read_medications(
        [*by_type.get("MedicationRequest", ()), *by_type.get("MedicationStatement", ())],
        origin="active",
        index=index,
        medications=medications,
        active_statuses=active_statuses,
    )
    selections = context.get("selections") if hook == "order-select" else None
    drafts = read_medications(
        draft_orders,
        origin="draft",
        index=index,
        medications=medications,
        active_statuses=active_statuses,
        selected=frozenset(s for s in selections if isinstance(s, str))
        if isinstance(selections, list)
        else None,
    )
    cni = index.groups["cni"]
    cni_starts = [m.authored_on for m in active if m.classes & cni and m.authored_on is not None]
    return Facts(
        hook=hook,
        now=now,
        birth_date=birth_date,
        sex=sex,
        labs=labs,
        current=current,
        kidney=kidney,
        corrected_calcium=corrected,
        mg_trend=tuple(
            reversed([r for r in labs.get("magnesium", []) if r.effective >= trend_start])
        ),
        active=tuple(active),
        drafts=tuple(drafts),
        cni_start=min(cni_starts, default=None),
        skipped=tuple(skipped),
    )
