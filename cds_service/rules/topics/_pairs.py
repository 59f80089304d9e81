"""Pairs of drugs where one is being ordered: what the antacid cards share."""

from __future__ import annotations

from datetime import timedelta

from ...content import Indicator
from ...facts import Facts, LabResult
from .._base import MedicationMatch, RuleConfig, having


def pair(
    facts: Facts, first: set[str], second: set[str]
) -> tuple[MedicationMatch, MedicationMatch, Indicator] | str:
    """Both present with one being ordered (order hooks), or both active (patient-view)."""
    if facts.hook == "patient-view":
        a, b = having(facts.active, first), having(facts.active, second)
        return (a, b, "info") if a and b else "not both active"
    a, b = having(facts.present, first), having(facts.present, second)
    if not (a and b):
        return "not both present"
    if not (having(facts.being_ordered, first) or having(facts.being_ordered, second)):
        return "neither is being ordered"
    return a, b, "warning"


def latest_within_trend(facts: Facts, analyte: str, config: RuleConfig) -> LabResult | None:
    start = facts.now - timedelta(days=config.windows.trend_days)
    return next((r for r in facts.results(analyte) if r.effective >= start), None)
