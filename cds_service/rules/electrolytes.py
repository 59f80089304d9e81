"""Potassium and calcium that will not correct until magnesium is repleted."""

from __future__ import annotations

from datetime import timedelta

from ..content import Indicator
from ..facts import Facts, is_below
from ._base import (
    Finding,
    Outcome,
    Row,
    RuleConfig,
    Suggestion,
    class_names,
    having,
    hook_not_in,
    row,
)

_HOOKS = ("patient-view", "order-select", "order-sign")


def _mg_state(facts: Facts, config: RuleConfig) -> tuple[str, list[Suggestion]] | None:
    """Why Mg counts as a problem ("low" or "unknown"), with what to suggest; None if it is fine."""
    mg = facts.current.get("magnesium")
    if mg is None:
        return "unknown", [Suggestion("lab", "magnesium", "Check Mg before repleting K or Ca")]
    if not is_below(mg, config.thresholds.mg_low):
        return None
    if having(facts.being_ordered, {"oral_mg_supplement", "iv_mg"}):
        return "low", []
    critical = is_below(mg, config.thresholds.mg_critical)
    return "low", [Suggestion("medication", "iv_magnesium" if critical else "oral_magnesium")]


def _ordering_required(facts: Facts, classes: set[str], what: str) -> str | None:
    """On order hooks the card belongs to ordering a supplement; returns a reason when absent."""
    if facts.hook == "patient-view":
        return None
    if having(facts.being_ordered, classes):
        return None
    return f"no {what} being ordered"


def refractory_hypokalemia(facts: Facts, config: RuleConfig) -> Outcome:
    topic = "mg-refractory-hypokalemia"
    if skip := hook_not_in(facts, topic, _HOOKS):
        return skip
    if reason := _ordering_required(facts, {"k_supplement"}, "potassium supplement"):
        return Outcome(topic, reason)
    k = facts.current.get("potassium")
    if k is None or not is_below(k, config.thresholds.k_low):
        return Outcome(
            topic, "no current low potassium" if k is None else f"K {k.shown} is not low"
        )
    state = _mg_state(facts, config)
    mg = facts.current.get("magnesium")
    if state is None:
        return Outcome(topic, f"K {k.shown} is low but Mg {mg.shown if mg else ''} is not")
    mg_status, suggestions = state
    indicator: Indicator = (
        "critical"
        if mg_status == "low" and is_below(k, config.thresholds.k_critical)
        else "warning"
    )
    k_supplements = having(facts.active, {"k_supplement"})
    window_start = facts.now - timedelta(days=config.windows.current_lab_days)
    low_k = [
        r
        for r in facts.results("potassium")
        if r.effective >= window_start and is_below(r, config.thresholds.k_low)
    ]
    persistent = bool(k_supplements) and len(low_k) >= 2
    cni = having(facts.present, config.groups["cni"])
    values: dict[str, object] = {
        "k": k.shown,
        "mg": mg.shown if mg else "",
        "current_days": config.windows.current_lab_days,
        "persistent": persistent,
        "k_supplements": k_supplements.names,
        "low_count": len(low_k),
        "low_since": low_k[-1].day if low_k else "",
        "cni": class_names(cni, ("tacrolimus", "cyclosporine"), config),
    }
    table: list[Row] = [row(r, config) for r in facts.results("potassium")[:3]]
    if mg:
        table.insert(0, row(mg, config))
    return Outcome(
        topic,
        f"K {k.shown} below {config.thresholds.k_low.mmol_per_l:g} mmol/L with Mg {mg_status}",
        Finding(
            topic,
            indicator,
            values,
            tuple(table),
            ("on_cni",) if cni else (),
            tuple(suggestions),
            having(facts.being_ordered, {"k_supplement"}).order_ids,
        ),
    )


def refractory_hypocalcemia(facts: Facts, config: RuleConfig) -> Outcome:
    topic = "mg-refractory-hypocalcemia"
    if skip := hook_not_in(facts, topic, _HOOKS):
        return skip
    if reason := _ordering_required(facts, {"ca_supplement"}, "calcium supplement"):
        return Outcome(topic, reason)
    thresholds = config.thresholds
    ionized = facts.current.get("ionized_calcium")
    table: list[Row] = []
    if ionized is not None:
        if not is_below(ionized, thresholds.ca_ionized_low):
            return Outcome(topic, f"ionized Ca {ionized.shown} is not low")
        ca_label, ca_shown = "Ionized Ca", ionized.shown
        basis = "Ionized calcium is used (it is current and wins over corrected total calcium)."
        table.append(row(ionized, config))
    elif (corrected := facts.corrected_calcium) is not None:
        total = corrected.calcium
        # Compared in the Ca's own unit family (the mmol/L value when no mg/dL twin is set),
        # rounded so that a correction landing exactly on the line is not read as below it.
        limit_mg = thresholds.ca_total_low.mg_per_dl
        if total.family == "mass" and limit_mg is not None:
            low = round(corrected.corrected_mg_per_dl, 9) < limit_mg
        else:
            low = round(corrected.corrected_mmol_per_l, 9) < thresholds.ca_total_low.mmol_per_l
        if total.comparator in (">", ">="):
            low = False
        if not low:
            return Outcome(topic, f"corrected Ca {corrected.shown} is not low")
        table.append(row(total, config))
        if corrected.albumin is not None:
            ca_label, ca_shown = "corrected Ca", corrected.shown
            basis = (
                f"Corrected calcium (Payne) {corrected.shown} from total Ca {total.shown} and "
                f"albumin {corrected.albumin.shown} ({corrected.albumin.day})."
            )
            table.append(row(corrected.albumin, config))
            table.append(Row("Corrected calcium (Payne)", corrected.shown, total.day))
        else:
            ca_label, ca_shown = "Ca", total.shown
            basis = (
                "Total calcium, uncorrected: no albumin within "
                f"{config.windows.albumin_pairing_days} days of it."
            )
    else:
        return Outcome(topic, "no current calcium")
    state = _mg_state(facts, config)
    if state is None:
        return Outcome(topic, f"{ca_label} {ca_shown} is low but Mg is not")
    mg_status, suggestions = state
    mg = facts.current.get("magnesium")
    if mg:
        table.insert(0, row(mg, config))
    cni = having(facts.present, config.groups["cni"])
    values: dict[str, object] = {
        "ca_label": ca_label,
        "ca": ca_shown,
        "ca_basis": basis,
        "mg": mg.shown if mg else "",
        "current_days": config.windows.current_lab_days,
        "cni": class_names(cni, ("tacrolimus", "cyclosporine"), config),
    }
    return Outcome(
        topic,
        f"{ca_label} {ca_shown} low with Mg {mg_status}",
        Finding(
            topic,
            "warning",
            values,
            tuple(table),
            ("on_cni",) if cni else (),
            tuple(suggestions),
            having(facts.being_ordered, {"ca_supplement"}).order_ids,
        ),
    )
