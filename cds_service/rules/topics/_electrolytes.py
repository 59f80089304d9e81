"""What the potassium and calcium cards share: the state of magnesium behind a low K or Ca."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ...facts import Facts, LabResult, SkippedResult, is_below
from .._advice import plan_magnesium
from .._base import MgPlan, RuleConfig, Suggestion, having, recheck


@dataclass(frozen=True, slots=True)
class MgState:
    """Why Mg counts behind a low K or Ca: ``low`` (a current low result) or ``unknown``.

    ``recent``: the low result is no older than ``critical_max_age_hours`` (a critical card
    needs that, 4.3). ``stale_critical``: a critically low result older than that: recheck it
    now, never dose IV magnesium on it.
    """

    status: str
    mg: LabResult | None
    unreadable: SkippedResult | None
    plan: MgPlan | None
    suggestions: tuple[Suggestion, ...]
    recent: bool = False
    stale_critical: bool = False


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
    recent = mg.effective >= facts.now - timedelta(hours=config.windows.critical_max_age_hours)
    critical = is_below(mg, config.thresholds.mg_critical)
    if critical and not recent:
        found = recheck(facts, ("magnesium",), "Recheck Mg now: the last result was critically low")
        return MgState("low", mg, None, None, (found,) if found else (), stale_critical=True)
    plan = plan_magnesium(facts, config, "iv" if critical else "oral")
    return MgState("low", mg, None, plan, (), recent=recent)


def ordering_required(facts: Facts, classes: set[str], what: str) -> str | None:
    """On order hooks the card belongs to ordering a supplement; returns a reason when absent."""
    if facts.hook == "patient-view" or having(facts.being_ordered, classes):
        return None
    return f"no {what} being ordered"
