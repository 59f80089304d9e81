"""Gathered data → facts → rules → cards, with a trace of every step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import metrics
from ._logging import get_logger
from .alerting import Suppressor
from .content import INDICATOR_RANK, Content
from .facts import Facts, LabResult, MedicationFact, build_facts
from .protocol import Resource
from .render import UuidFactory, render_card
from .rules import Finding, Outcome, RuleConfig, run_rules

_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Evaluation:
    facts: Facts
    outcomes: Sequence[Outcome]
    shown: Sequence[Finding]
    withheld: Sequence[tuple[str, str]]
    cards: Sequence[dict[str, Any]]
    notes: Sequence[str] = field(default=())

    def response(self) -> dict[str, Any]:
        return {"cards": list(self.cards)}


class Engine:
    """Holds the compiled content and the rule configuration built once at start-up."""

    def __init__(self, content: Content) -> None:
        self.content = content
        self.config = RuleConfig.from_content(content)
        self.enabled = {code: topic.topic.enabled for code, topic in content.topics.items()}

    def evaluate(
        self,
        *,
        hook: str,
        context: Mapping[str, Any],
        resources: Mapping[str, Sequence[Resource]],
        draft_orders: Sequence[Resource],
        medications: Mapping[str, Resource],
        now: datetime,
        suppress: Suppressor | None = None,
        new_uuid: UuidFactory | None = None,
        notes: Sequence[str] = (),
    ) -> Evaluation:
        facts = build_facts(
            hook=hook,
            context=context,
            resources=resources,
            draft_orders=draft_orders,
            medications=medications,
            content=self.content,
            now=now,
        )
        _report_unusable_units(facts)
        outcomes = run_rules(facts, self.config, self.enabled)
        findings = sorted(
            (outcome.finding for outcome in outcomes if outcome.finding is not None),
            key=lambda finding: -INDICATOR_RANK[finding.indicator],
        )
        shown: list[Finding] = []
        withheld: list[tuple[str, str]] = []
        for finding in findings:
            reason = suppress(finding) if suppress else None
            if reason:
                withheld.append((finding.topic, reason))
            elif len(shown) >= self.content.settings.max_cards:
                withheld.append((finding.topic, "over the card cap"))
            else:
                shown.append(finding)
        patient_id = str(context.get("patientId", ""))
        kwargs = {"new_uuid": new_uuid} if new_uuid else {}
        cards = [render_card(finding, self.content, patient_id, **kwargs) for finding in shown]
        return Evaluation(facts, outcomes, shown, withheld, cards, tuple(notes))


def _report_unusable_units(facts: Facts) -> None:
    """Results never guessed from an unknown unit: counted and logged, without patient data."""
    for skipped in facts.skipped:
        if skipped.reason == "unrecognised unit":
            metrics.UNRECOGNISED_UNITS.labels(skipped.analyte).inc()
            _log.warning(
                "lab.unrecognised_unit",
                analyte=skipped.analyte,
                code=skipped.code,
                unit=skipped.unit,
            )


def _lab_trace(result: LabResult) -> dict[str, Any]:
    return {
        "analyte": result.analyte,
        "code": result.code,
        "reported": {"value": result.value, "unit": result.unit, "comparator": result.comparator},
        "canonical": {"value": round(result.canonical, 4), "unit": result.canonical_unit},
        "family": result.family,
        "effective": result.effective.isoformat(),
        "status": result.status,
        "id": result.resource_id,
    }


def _medication_trace(med: MedicationFact) -> dict[str, Any]:
    return {
        "display": med.display,
        "classes": sorted(med.classes),
        "matched_by": list(med.matched_by),
        "status": med.status,
        "origin": med.origin,
        "being_ordered": med.being_ordered,
        "authored_on": med.authored_on.isoformat() if med.authored_on else None,
        "id": med.resource_id,
    }


def trace(evaluation: Evaluation) -> dict[str, Any]:
    """Every fact with the raw value it came from, and every rule with why it fired or not."""
    facts = evaluation.facts
    kidney = facts.kidney
    corrected = facts.corrected_calcium
    return {
        "now": facts.now.isoformat(),
        "hook": facts.hook,
        "data_notes": list(evaluation.notes),
        "labs": {
            analyte: [_lab_trace(r) for r in results] for analyte, results in facts.labs.items()
        },
        "current": {analyte: _lab_trace(result) for analyte, result in facts.current.items()},
        "skipped_results": [
            {
                "analyte": s.analyte,
                "code": s.code,
                "reason": s.reason,
                "unit": s.unit,
                "id": s.resource_id,
            }
            for s in facts.skipped
        ],
        "kidney_function": (
            {
                "egfr": round(kidney.egfr, 1),
                "comparator": kidney.comparator,
                "source": kidney.source,
            }
            if kidney
            else None
        ),
        "corrected_calcium": (
            {
                "calcium": _lab_trace(corrected.calcium),
                "albumin": _lab_trace(corrected.albumin) if corrected.albumin else None,
                "corrected_mg_per_dl": round(corrected.corrected_mg_per_dl, 3),
                "corrected_mmol_per_l": round(corrected.corrected_mmol_per_l, 4),
            }
            if corrected
            else None
        ),
        "mg_trend": [_lab_trace(r) for r in facts.mg_trend],
        "cni_start": facts.cni_start.isoformat() if facts.cni_start else None,
        "active_medications": [_medication_trace(m) for m in facts.active],
        "draft_orders": [_medication_trace(m) for m in facts.drafts],
        "rules": [
            {
                "topic": outcome.topic,
                "fired": outcome.fired,
                "indicator": outcome.finding.indicator if outcome.finding else None,
                "why": outcome.why,
            }
            for outcome in evaluation.outcomes
        ],
        "withheld": [{"topic": topic, "reason": reason} for topic, reason in evaluation.withheld],
    }
