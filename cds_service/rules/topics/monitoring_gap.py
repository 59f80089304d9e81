"""mg-monitoring-gap: a patient on a calcineurin inhibitor whose Mg is not being checked (4.8).

The CNI course (start, new start, evidence) is decided in the facts. The check interval is
``monitoring_gap_days`` in the first ``stable_cni_days`` of a CNI (or when its start is unknown),
then ``stable_monitoring_gap_days``. A CNI being started now, with no Mg since, asks for a check
this week (warning); a low Mg that is no longer current is overdue at once; a serum Mg among the
draft orders answers the card.
"""

from __future__ import annotations

from datetime import timedelta

from ...content import Indicator, TopicSpec
from ...facts import Facts, LabResult, is_below
from .._base import (
    Finding,
    Outcome,
    RuleConfig,
    Suggestion,
    TopicRule,
    cni_name,
    having,
    hook_not_in,
    row,
)

SPEC = TopicSpec(
    code="mg-monitoring-gap",
    title="Magnesium monitoring on a calcineurin inhibitor",
    hooks=("patient-view", "order-select"),
    indicators=("warning", "info"),
    values={
        "cni": ("tacrolimus", "tacrolimus and cyclosporine"),
        "reason": ("new_start", "stale_low", "gap", "never"),
        "being_started": (True, False),
        "cni_start": ("2026-11-13", ""),
        "last_mg": ("0.62 mmol/L", ""),
        "last_mg_date": ("2026-10-01", ""),
        "last_mg_age_days": (50, ""),
        "unreadable_date": ("2026-11-18", ""),
        "window": (42, 90),
        "early_window": (42,),
        "stable_days": (365,),
        "stable_window": (90,),
        "current_days": (30,),
    },
    priority=90,
)


def _reason(
    facts: Facts, config: RuleConfig, last: LabResult | None, window: int
) -> tuple[str, Indicator] | None:
    cni = facts.cni
    assert cni is not None
    t, w = config.thresholds, config.windows
    new_start = cni.being_started or cni.started_within(facts.now, w.new_cni_days)
    since_start = last is not None and cni.start is not None and last.effective >= cni.start
    if new_start and cni.start is not None and not since_start:
        # Warning for a CNI being started now, or a recent start with no Mg at all; a recent
        # start checked only before it stays routine.
        return "new_start", "warning" if cni.being_started or last is None else "info"
    stale = last is not None and last.effective < facts.now - timedelta(days=w.current_lab_days)
    if last is not None and stale and is_below(last, t.mg_cni_target):
        return "stale_low", "warning" if is_below(last, t.mg_low) else "info"
    if last is None:
        return "never", "info"
    if last.effective < facts.now - timedelta(days=window):
        return "gap", "info"
    return None


def mg_monitoring_gap(facts: Facts, config: RuleConfig) -> Outcome:
    topic = SPEC.code
    if skip := hook_not_in(facts, SPEC):
        return skip
    cni = facts.cni
    if facts.hook == "patient-view":
        if cni is None or not cni.active:
            return Outcome(topic, "no CNI active")
    elif cni is None or not having(facts.being_ordered, config.groups["cni"]):
        return Outcome(topic, "no CNI selected")
    if facts.mg_check_ordered:
        return Outcome(topic, "a serum Mg is among the orders being placed")
    w = config.windows
    window = cni.monitoring_window(
        facts.now, w.monitoring_gap_days, w.stable_cni_days, w.stable_monitoring_gap_days
    )
    last = next(iter(facts.results("magnesium")), None)
    found = _reason(facts, config, last, window)
    if found is None:
        assert last is not None
        return Outcome(topic, f"on a CNI, last Mg {last.day} is within {window} days")
    reason, indicator = found
    unreadable = facts.newest_unreadable("magnesium")
    values: dict[str, object] = {
        "cni": cni_name(facts),
        "reason": reason,
        "being_started": cni.being_started,
        "cni_start": cni.start.date().isoformat() if cni.start else "",
        "last_mg": last.shown if last else "",
        "last_mg_date": last.day if last else "",
        "last_mg_age_days": (facts.now - last.effective).days if last else "",
        "unreadable_date": unreadable.day if unreadable else "",
        "window": window,
        "early_window": w.monitoring_gap_days,
        "stable_days": w.stable_cni_days,
        "stable_window": w.stable_monitoring_gap_days,
        "current_days": w.current_lab_days,
    }
    return Outcome(
        topic,
        f"on a CNI: {reason.replace('_', ' ')}"
        + (f" (last Mg {last.day})" if last else " (no usable Mg on record)")
        + f"; check interval {window} days; start evidence: {'; '.join(cni.evidence) or 'none'}",
        Finding(
            topic,
            indicator,
            values,
            (row(last, config),) if last else (),
            (),
            (Suggestion("lab", ("magnesium",), "Serum magnesium on a calcineurin inhibitor"),),
            having(facts.being_ordered, config.groups["cni"]).order_ids,
            on_cni=True,
        ),
    )


TOPIC = TopicRule(SPEC, mg_monitoring_gap)
