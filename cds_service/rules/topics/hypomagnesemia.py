"""hypomagnesemia: low serum Mg by severity, with the treatment its context allows (4.3-4.5).

Critical needs a result no older than ``critical_max_age_hours``: an older critical result asks
for a recheck now (warning), never IV magnesium on stale data. The magnesium advice comes from
the shared plan (kidney function, age, what the patient already gets). On order hooks only a
critical card fires unless an order being placed is relevant (4.12).
"""

from __future__ import annotations

from datetime import timedelta

from ...content import Indicator, Threshold, TopicSpec
from ...facts import Facts, LabResult, is_below, threshold_text
from .._advice import plan_magnesium
from .._base import (
    RECHECK_ALL,
    Finding,
    Outcome,
    RuleConfig,
    Suggestion,
    TopicRule,
    all_true,
    cni_name,
    having,
    hook_not_in,
    recheck,
    row,
    rows,
)

SPEC = TopicSpec(
    code="hypomagnesemia",
    title="Low serum magnesium",
    hooks=("patient-view", "order-select", "order-sign"),
    indicators=("critical", "warning", "info"),
    values={
        "mg": ("1.1 mg/dL", "<0.40 mmol/L"),
        "mg_date": ("2026-11-19",),
        "threshold": ("1.2 mg/dL", "0.66 mmol/L"),
        "stale": (False, True),
        "cni": ("tacrolimus", "tacrolimus and cyclosporine", ""),
        "egfr": ("24 mL/min/1.73 m2", ""),
        "egfr_source": ("reported eGFR", "CKD-EPI 2021 from creatinine 2.5 mg/dL on 2026-11-18"),
        "low_count": (3,),
        "low_line": ("1.6 mg/dL",),
        "low_since": ("2026-09-01",),
        "supplements": ("Magnesium Oxide 400 MG Oral Tablet",),
        "ppi": ("Omeprazole 20 MG Delayed Release Oral Capsule",),
        "diuretic": ("Furosemide 20 MG Oral Tablet",),
        "other_wasting": ("cisplatin 1 MG/ML Injectable Solution",),
        "digoxin": ("Digoxin 0.125 MG Oral Tablet",),
    },
    notes=(
        "kidney",
        "on_cni",
        "cni_persistent",
        "cni_review",
        "ppi",
        "diuretic",
        "other_wasting",
        "digoxin",
    ),
    priority=10,
)

# Context notes: the first column is a named predicate of the facts, or a local one below.
_CNI_NOTES = (("on_cni", "on_cni"),)
_DRUG_NOTES = (
    ("ppi", frozenset({"ppi"})),
    ("diuretic", frozenset({"loop_diuretic", "thiazide"})),
    ("other_wasting", frozenset({"other_mg_wasting", "mtor_inhibitor"})),
    ("digoxin", frozenset({"digoxin"})),
)


def _tier(
    mg: LabResult, facts: Facts, config: RuleConfig
) -> tuple[Indicator, Threshold, bool] | None:
    """(indicator, the line it is below, whether a critical result is too old to act on)."""
    t = config.thresholds
    if is_below(mg, t.mg_critical):
        max_age = timedelta(hours=config.windows.critical_max_age_hours)
        stale = mg.effective < facts.now - max_age
        return ("warning" if stale else "critical"), t.mg_critical, stale
    if is_below(mg, t.mg_low):
        return "warning", t.mg_low, False
    if facts.on_cni and is_below(mg, t.mg_cni_target):
        return "info", t.mg_cni_target, False
    return None


def _persistent(facts: Facts, config: RuleConfig) -> dict[str, object] | None:
    """Mg below the warning line in at least N results spanning D days, all while an oral
    supplement was already active (4.3: "despite aggressive supplementation")."""
    supplements = having(facts.active, {"oral_mg_supplement"})
    starts = [m.authored_on for m in supplements.meds if m.authored_on is not None]
    if not supplements or not starts:
        return None
    since = min(starts)
    # A result back at the transplant target ends the run; one just under it (the info tier)
    # does not, but only results below the warning line are counted.
    thresholds = config.thresholds
    run: list[LabResult] = []
    for result in reversed(facts.mg_trend):  # newest first
        if result.effective < since or not is_below(result, thresholds.mg_cni_target):
            break
        if is_below(result, thresholds.mg_low):
            run.append(result)
    windows = config.windows
    if len(run) < windows.persistent_low_count:
        return None
    if (run[0].effective - run[-1].effective).days < windows.persistent_low_days:
        return None
    return {
        "low_count": len(run),
        "low_since": run[-1].day,
        "low_line": threshold_text(run[0].family, config.thresholds.mg_low),
        "supplements": supplements.names,
    }


def _notes(facts: Facts, config: RuleConfig, values: dict[str, object]) -> list[str]:
    notes = ["kidney"] if facts.kidney else []
    notes += all_true(facts, _CNI_NOTES)
    if facts.cni is not None and facts.cni.active and (persistent := _persistent(facts, config)):
        values.update(persistent)
        # The lower-target note is for tacrolimus the patient takes, not one being ordered.
        taking_tacrolimus = any("tacrolimus" in m.classes for m in facts.active)
        notes.append("cni_persistent" if taking_tacrolimus else "cni_review")
    for note, classes in _DRUG_NOTES:
        if match := having(facts.present, classes):
            notes.append(note)
            values[note] = match.names
    return notes


def _suggestions(facts: Facts, indicator: Indicator, stale: bool) -> tuple[Suggestion, ...]:
    if stale:
        found = recheck(facts, ("magnesium",), "Recheck Mg now: the last result was critically low")
    elif indicator == "critical":
        found = recheck(facts, RECHECK_ALL, "Recheck Mg, K, Ca and creatinine in 6-12 h")
    elif indicator == "warning":
        found = recheck(facts, ("magnesium",), "Recheck Mg in 1-2 weeks")
    else:
        found = None
    return (found,) if found else ()


def hypomagnesemia(facts: Facts, config: RuleConfig) -> Outcome:
    topic = SPEC.code
    if skip := hook_not_in(facts, SPEC):
        return skip
    mg = facts.current.get("magnesium")
    if mg is None:
        unreadable = facts.newest_unreadable("magnesium")
        why = f"no Mg result in the last {config.windows.current_lab_days} days"
        if unreadable is not None:
            why += f"; the newest Mg ({unreadable.day}) could not be read: {unreadable.reason}"
        return Outcome(topic, why)
    tier = _tier(mg, facts, config)
    if tier is None:
        return Outcome(
            topic,
            f"current Mg {mg.shown} is not below any tier"
            + ("" if facts.on_cni else " (not on a CNI)"),
        )
    indicator, line, stale = tier
    if indicator != "critical" and facts.order_hook and not facts.relevant_order:
        return Outcome(
            topic, f"Mg {mg.shown} is low ({indicator}) but no order being placed is about it"
        )
    values: dict[str, object] = {
        "mg": mg.shown,
        "mg_date": mg.day,
        "threshold": threshold_text(mg.family, line),
        "stale": stale,
        "cni": cni_name(facts),
        "egfr": facts.kidney.shown if facts.kidney else "",
        "egfr_source": facts.kidney.source if facts.kidney else "",
    }
    notes = _notes(facts, config, values)
    plan = None
    if not stale:
        plan = plan_magnesium(facts, config, "iv" if indicator == "critical" else "oral")
    derived = (
        (row(facts.kidney.result, config, "eGFR source: creatinine"),)
        if facts.kidney and facts.kidney.derived
        else ()
    )
    return Outcome(
        topic,
        f"current Mg {mg.shown} ({mg.day}) is below {values['threshold']}"
        + (" (critical, but older than the critical window: recheck)" if stale else "")
        + (" on a CNI" if indicator == "info" else ""),
        Finding(
            topic,
            indicator,
            values,
            (*rows(facts.mg_trend[::-1], config), *derived),
            tuple(notes),
            _suggestions(facts, indicator, stale),
            advice=plan,
            on_cni=facts.on_cni,
        ),
    )


TOPIC = TopicRule(SPEC, hypomagnesemia)
