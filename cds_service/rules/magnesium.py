"""Magnesium itself: low Mg by tier, digoxin, monitoring gaps on a CNI, a falling trend."""

from __future__ import annotations

from datetime import timedelta

from ..content import Indicator
from ..facts import Facts, LabResult, format_number, is_below
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
    rows,
)

ALL_HOOKS = ("patient-view", "order-select", "order-sign")


def _threshold_text(result: LabResult, mmol: float, mg_dl: float | None) -> str:
    if result.family == "mass" and mg_dl is not None:
        return f"{format_number(mg_dl)} mg/dL"
    return f"{format_number(mmol)} mmol/L"


def _mg_tier(mg: LabResult, on_cni: bool, config: RuleConfig) -> tuple[Indicator, str] | None:
    t = config.thresholds
    if is_below(mg, t.mg_critical):
        return "critical", _threshold_text(mg, t.mg_critical.mmol_per_l, t.mg_critical.mg_per_dl)
    if is_below(mg, t.mg_low):
        return "warning", _threshold_text(mg, t.mg_low.mmol_per_l, t.mg_low.mg_per_dl)
    if on_cni and is_below(mg, t.mg_cni_target):
        return "info", _threshold_text(mg, t.mg_cni_target.mmol_per_l, t.mg_cni_target.mg_per_dl)
    return None


def _kidney_context(
    facts: Facts, config: RuleConfig
) -> tuple[dict[str, object], list[str], list[Row]]:
    kidney = facts.kidney
    if kidney is None:
        return {}, [], []
    notes = ["kidney"]
    cap = config.thresholds.egfr_iv_cap
    # As for lab thresholds: "<30" is below 30, ">20" is never read as low.
    if kidney.comparator not in (">", ">=") and (
        kidney.egfr < cap or (kidney.comparator == "<" and kidney.egfr <= cap)
    ):
        notes.append("egfr_low")
    derived = (
        []
        if kidney.source == "reported eGFR"
        else [Row("eGFR (CKD-EPI 2021)", kidney.shown, kidney.result.day)]
    )
    return {"egfr": kidney.shown, "egfr_source": kidney.source}, notes, derived


def hypomagnesemia(facts: Facts, config: RuleConfig) -> Outcome:
    topic = "hypomagnesemia"
    if skip := hook_not_in(facts, topic, ALL_HOOKS):
        return skip
    mg = facts.current.get("magnesium")
    if mg is None:
        return Outcome(topic, f"no Mg result in the last {config.windows.current_lab_days} days")
    cni = having(facts.present, config.groups["cni"])
    tier = _mg_tier(mg, bool(cni), config)
    if tier is None:
        return Outcome(
            topic,
            f"current Mg {mg.shown} is not below any tier" + ("" if cni else " (not on a CNI)"),
        )
    indicator, threshold = tier
    values: dict[str, object] = {
        "mg": mg.shown,
        "mg_date": mg.day,
        "threshold": threshold,
        "indicator": indicator,
        "cni": class_names(cni, ("tacrolimus", "cyclosporine"), config)
        or "a calcineurin inhibitor",
    }
    kidney_values, notes, derived = _kidney_context(facts, config)
    values.update(kidney_values)
    if cni:
        notes.append("on_cni")
        supplements = having(facts.active, {"oral_mg_supplement", "iv_mg"})
        low = [r for r in facts.mg_trend if is_below(r, config.thresholds.mg_cni_target)]
        if supplements and len(low) >= 2:
            notes.append("cni_persistent")
            values.update(low_count=len(low), low_since=low[0].day, supplements=supplements.names)
    for note, classes in (
        ("ppi", {"ppi"}),
        ("diuretic", {"loop_diuretic", "thiazide"}),
        ("other_wasting", {"other_mg_wasting", "mtor_inhibitor"}),
        ("digoxin", {"digoxin"}),
    ):
        if match := having(facts.present, classes):
            notes.append(note)
            values[note] = match.names
    suggestions = (
        [
            Suggestion(
                "lab",
                "magnesium",
                "Recheck Mg, K, Ca and creatinine in 6-12 h"
                if indicator == "critical"
                else "Recheck Mg in 1-2 weeks",
            )
        ]
        if indicator != "info"
        else []
    )
    if not having(facts.being_ordered, {"oral_mg_supplement", "iv_mg"}):
        if indicator == "critical":
            suggestions.append(Suggestion("medication", "iv_magnesium"))
        elif not having(facts.active, {"oral_mg_supplement"}):
            suggestions.append(Suggestion("medication", "oral_magnesium"))
    return Outcome(
        topic,
        f"current Mg {mg.shown} ({mg.day}) is below {threshold}"
        + (" on a CNI" if indicator == "info" else ""),
        Finding(
            topic,
            indicator,
            values,
            (*rows(facts.mg_trend[::-1], config), *derived),
            tuple(notes),
            tuple(suggestions),
        ),
    )


def mg_digoxin(facts: Facts, config: RuleConfig) -> Outcome:
    topic = "mg-digoxin"
    if skip := hook_not_in(facts, topic, ("patient-view", "order-select")):
        return skip
    pool = facts.active if facts.hook == "patient-view" else facts.being_ordered
    digoxin = having(pool, {"digoxin"})
    if not digoxin:
        return Outcome(
            topic, "no digoxin " + ("active" if facts.hook == "patient-view" else "selected")
        )
    mg = facts.current.get("magnesium")
    if mg is None:
        return Outcome(topic, "digoxin, but no current Mg")
    target = config.thresholds.mg_digoxin
    target_text = _threshold_text(mg, target.mmol_per_l, target.mg_per_dl)
    if not is_below(mg, target):
        return Outcome(topic, f"digoxin with Mg {mg.shown}, not below {target_text}")
    kidney_values, notes, derived = _kidney_context(facts, config)
    values = {"mg": mg.shown, "mg_date": mg.day, "digoxin": digoxin.names, **kidney_values}
    return Outcome(
        topic,
        f"digoxin ({digoxin.names}) with Mg {mg.shown} below {target_text}",
        Finding(
            topic,
            "warning",
            values,
            (row(mg, config), *derived),
            tuple(n for n in notes if n == "kidney"),
            (Suggestion("medication", "oral_magnesium"),)
            if not having(facts.present, {"oral_mg_supplement", "iv_mg"})
            else (),
            digoxin.order_ids,
        ),
    )


def mg_monitoring_gap(facts: Facts, config: RuleConfig) -> Outcome:
    topic = "mg-monitoring-gap"
    if skip := hook_not_in(facts, topic, ("patient-view", "order-select")):
        return skip
    cni_classes = config.groups["cni"]
    if facts.hook == "patient-view":
        cni = having(facts.active, cni_classes)
    else:
        cni = having(facts.being_ordered, cni_classes)
    if not cni:
        return Outcome(
            topic, "no CNI " + ("active" if facts.hook == "patient-view" else "selected")
        )
    windows = config.windows
    last = next(iter(facts.results("magnesium")), None)
    active_cni = having(facts.active, cni_classes)
    start = facts.cni_start if active_cni else None
    new_start = start is None or start >= facts.now - timedelta(days=windows.new_cni_days)
    gap = last is None or last.effective < facts.now - timedelta(days=windows.monitoring_gap_days)
    none_since_start = start is not None and new_start and (last is None or last.effective < start)
    if not gap and not none_since_start:
        assert last is not None
        return Outcome(
            topic, f"on a CNI, last Mg {last.day} is within {windows.monitoring_gap_days} days"
        )
    indicator: Indicator = "warning" if new_start and last is None else "info"
    values: dict[str, object] = {
        "cni": class_names(cni, ("tacrolimus", "cyclosporine"), config),
        "new_start": new_start,
        "cni_start": start.date().isoformat() if start else "",
        "last_mg": last.shown if last else "",
        "last_mg_date": last.day if last else "",
        "last_mg_age_days": (facts.now - last.effective).days if last else "",
    }
    why = (
        "no Mg result on record"
        if last is None
        else f"last Mg {last.day} is older than {windows.monitoring_gap_days} days"
        if gap
        else f"CNI started {values['cni_start']} and no Mg since"
    )
    return Outcome(
        topic,
        f"on a CNI and {why}",
        Finding(
            topic,
            indicator,
            values,
            (row(last, config),) if last else (),
            (),
            (Suggestion("lab", "magnesium", "Serum magnesium on a calcineurin inhibitor"),),
            cni.order_ids,
        ),
    )


def mg_declining(facts: Facts, config: RuleConfig) -> Outcome:
    topic = "mg-declining"
    if skip := hook_not_in(facts, topic, ("patient-view",)):
        return skip
    cni = having(facts.active, config.groups["cni"])
    if not cni:
        return Outcome(topic, "not on a CNI")
    mg = facts.current.get("magnesium")
    if mg is None:
        return Outcome(topic, "no current Mg")
    if is_below(mg, config.thresholds.mg_cni_target) or is_below(mg, config.thresholds.mg_low):
        return Outcome(topic, "Mg is already low (the hypomagnesemia card covers it)")
    trend = facts.mg_trend
    if len(trend) < 3:
        return Outcome(topic, f"{len(trend)} Mg results in the trend window, 3 needed")
    first, last = trend[0], trend[-1]
    if first.family == last.family and first.unit.lower() == last.unit.lower():
        start_value, end_value = first.value, last.value
    else:
        start_value, end_value = first.canonical, last.canonical
    if start_value <= 0:
        return Outcome(topic, f"first Mg of the trend {first.shown} is not a usable baseline")
    fall = (start_value - end_value) / start_value
    # Rounded so that a fall printed as exactly 20% is read as 20%, not 19.9999%.
    if round(fall, 9) < config.thresholds.mg_decline_fraction:
        return Outcome(topic, f"Mg changed {-fall:+.0%} across the trend window")
    values = {
        "cni": class_names(cni, ("tacrolimus", "cyclosporine"), config),
        "first_mg": first.shown,
        "mg": last.shown,
        "decline_pct": round(fall * 100),
        "span_days": (last.effective - first.effective).days,
        "result_count": len(trend),
    }
    return Outcome(
        topic,
        f"Mg fell {fall:.0%} from {first.shown} to {last.shown} on a CNI",
        Finding(
            topic,
            "info",
            values,
            rows(trend[::-1], config),
            (),
            (
                Suggestion(
                    "lab", "magnesium", "Recheck Mg sooner: falling on a calcineurin inhibitor"
                ),
            ),
        ),
    )
