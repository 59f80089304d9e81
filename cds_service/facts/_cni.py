"""A calcineurin-inhibitor course: which CNI, since when, and whether it is being started now.

Decided once here from every piece of evidence the chart holds, so no rule re-derives it:
active orders and statements, completed or stopped orders, a draft's ``priorPrescription``, and
CNI drug levels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ._labs import LabResult
from ._medications import MedicationFact

# The drug level that proves a patient has taken each CNI before.
LEVEL_ANALYTE = {"tacrolimus": "tacrolimus_level", "cyclosporine": "cyclosporine_level"}


@dataclass(frozen=True, slots=True)
class CniCourse:
    """The patient's CNI course, as far as the data tells.

    ``classes``: the CNIs active or ordered. ``start``: the earliest evidence of the course
    (the moment of the request for a CNI being started now); None when nothing dates it, and
    then the course is "routine" (never "being started"). ``evidence`` explains, for the trace.
    """

    classes: frozenset[str]
    active: bool
    start: datetime | None
    being_started: bool
    evidence: tuple[str, ...]

    def started_within(self, now: datetime, days: int) -> bool:
        return self.start is not None and self.start >= now - timedelta(days=days)

    def monitoring_window(self, now: datetime, early_days: int, stable: int, later: int) -> int:
        """Days between Mg checks: ``early_days`` in the first ``stable`` days (or when the start
        is unknown), then ``later``."""
        if self.start is None or now - self.start < timedelta(days=stable):
            return early_days
        return later


def _for_ingredient(
    cni: str,
    active: Sequence[MedicationFact],
    history: Sequence[MedicationFact],
    ordered: Sequence[MedicationFact],
    levels: Sequence[LabResult],
    now: datetime,
    new_days: int,
) -> tuple[datetime | None, bool, list[str]]:
    """(start, being started now, evidence) for one CNI."""
    evidence: list[str] = []
    dates: list[datetime] = []
    for med in active:
        evidence.append(f"active {med.resource_type} ({med.display})")
        if med.authored_on is not None:
            dates.append(med.authored_on)
    for med in history:
        evidence.append(f"{med.status} order ({med.display})")
        if med.authored_on is not None:
            dates.append(med.authored_on)
    if levels:
        earliest = levels[-1]
        evidence.append(f"{cni} level on {earliest.day}")
        dates.append(earliest.effective)
    prior = [med for med in ordered if med.prior_prescription]
    if prior:
        evidence.append("the order being placed renews a prior prescription")
    old_level = any(level.effective < now - timedelta(days=new_days) for level in levels)
    being_started = bool(ordered) and not active and not history and not prior and not old_level
    if being_started:
        evidence.append(
            f"{cni} ordered now with no earlier order and no level older than {new_days} days:"
            " a new start"
        )
        # The draft is dated by the request; a recent level is earlier evidence of the course.
        return min([*dates, now]), True, evidence
    return min(dates, default=None), False, evidence


def cni_course(
    *,
    cni_classes: frozenset[str],
    active: Sequence[MedicationFact],
    history: Sequence[MedicationFact],
    drafts: Sequence[MedicationFact],
    labs: Mapping[str, Sequence[LabResult]],
    now: datetime,
    new_days: int,
) -> CniCourse | None:
    """The CNI course, or None when no CNI is active or ordered."""
    present: set[str] = set()
    starts: list[datetime] = []
    new_starts: list[datetime] = []
    evidence: list[str] = []
    for cni in sorted(cni_classes):
        on = [m for m in active if cni in m.classes]
        ordered = [m for m in drafts if cni in m.classes]
        if not on and not ordered:
            continue
        present.add(cni)
        start, started_now, found = _for_ingredient(
            cni,
            on,
            [m for m in history if cni in m.classes],
            [m for m in ordered if m.being_ordered],
            labs.get(LEVEL_ANALYTE.get(cni, ""), ()),
            now,
            new_days,
        )
        evidence.extend(found)
        if start is not None:
            (new_starts if started_now else starts).append(start)
    if not present:
        return None
    # A CNI being started now (a switch from the other one included) dates the course: its
    # first-week Mg check is not answered by an Mg drawn on the CNI it replaces.
    return CniCourse(
        classes=frozenset(present),
        active=any(m.classes & cni_classes for m in active),
        start=min(new_starts or starts, default=None),
        being_started=bool(new_starts),
        evidence=tuple(evidence),
    )
