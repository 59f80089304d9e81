"""What the potassium and calcium cards share: the state of magnesium behind a low K or Ca."""

from __future__ import annotations

from dataclasses import dataclass

from ...facts import Facts, LabResult, SkippedResult, is_below
from .._advice import plan_magnesium
from .._base import MgPlan, RuleConfig, Suggestion, having, recheck


@dataclass(frozen=True, slots=True)
class MgState:
    """Why Mg counts behind a low K or Ca: ``low`` (a current low result) or ``unknown``."""

    status: str
    mg: LabResult | None
    unreadable: SkippedResult | None
    plan: MgPlan | None
    suggestions: tuple[Suggestion, ...]


def mg_state(facts: Facts, config: RuleConfig) -> MgState | None:
    """The Mg behind a low K or Ca, or None when it is neither low nor unknown (normal or high:
    no low-Mg card ever fires on those)."""
    mg = facts.current.get("magnesium")
    if mg is None:
        found = recheck(facts, ("magnesium",), "Check Mg now, alongside treating K or Ca")
        unreadable = facts.newest_unreadable("magnesium")
        return MgState("unknown", None, unreadable, None, (found,) if found else ())
    if not is_below(mg, config.thresholds.mg_low):
        return None
    critical = is_below(mg, config.thresholds.mg_critical)
    plan = plan_magnesium(facts, config, "iv" if critical else "oral")
    return MgState("low", mg, None, plan, ())


def ordering_required(facts: Facts, classes: set[str], what: str) -> str | None:
    """On order hooks the card belongs to ordering a supplement; returns a reason when absent."""
    if facts.hook == "patient-view" or having(facts.being_ordered, classes):
        return None
    return f"no {what} being ordered"
