"""mg-declining: Mg not low yet but falling on a CNI, while still below the decline floor."""

from __future__ import annotations

from ...content import TopicSpec
from ...facts import Facts, LabResult, is_below, threshold_text
from .._base import Finding, Outcome, RuleConfig, Suggestion, TopicRule, cni_name, hook_not_in, rows

SPEC = TopicSpec(
    code="mg-declining",
    title="Falling magnesium on a calcineurin inhibitor",
    hooks=("patient-view",),
    indicators=("info",),
    values={
        "cni": ("tacrolimus",),
        "first_mg": ("0.95 mmol/L",),
        "mg": ("0.74 mmol/L",),
        "decline_pct": (22,),
        "span_days": (147,),
        "result_count": (4,),
        "floor": ("0.80 mmol/L", "1.95 mg/dL"),
        "converted": (False, True),
    },
    priority=95,
)


def _same_unit(first: LabResult, last: LabResult) -> bool:
    return first.family == last.family and first.unit.lower() == last.unit.lower()


def mg_declining(facts: Facts, config: RuleConfig) -> Outcome:
    topic = SPEC.code
    if skip := hook_not_in(facts, SPEC):
        return skip
    if facts.cni is None or not facts.cni.active:
        return Outcome(topic, "not on a CNI")
    mg = facts.current.get("magnesium")
    if mg is None:
        return Outcome(topic, "no current Mg")
    t = config.thresholds
    if is_below(mg, t.mg_cni_target):
        return Outcome(topic, "Mg is already low (the hypomagnesemia card covers it)")
    floor = threshold_text(mg.family, t.mg_decline_floor)
    if not is_below(mg, t.mg_decline_floor):
        return Outcome(topic, f"Mg {mg.shown} is not below the decline floor {floor}")
    trend = facts.mg_trend
    if len(trend) < 3:
        return Outcome(topic, f"{len(trend)} Mg results in the trend window, 3 needed")
    first, last = trend[0], trend[-1]
    same = _same_unit(first, last)
    start_value, end_value = (
        (first.value, last.value) if same else (first.canonical, last.canonical)
    )
    if start_value <= 0:
        return Outcome(topic, f"first Mg of the trend {first.shown} is not a usable baseline")
    fall = (start_value - end_value) / start_value
    # Rounded so that a fall printed as exactly 20% is read as 20%, not 19.9999%.
    if round(fall, 9) < t.mg_decline_fraction:
        return Outcome(topic, f"Mg changed {-fall:+.0%} across the trend window")
    values = {
        "cni": cni_name(facts),
        # Mixed units: both in mmol/L, so one sentence never mixes unit families.
        "first_mg": first.shown if same else f"{first.canonical:.2f} mmol/L",
        "mg": last.shown if same else f"{last.canonical:.2f} mmol/L",
        "decline_pct": round(fall * 100),
        "span_days": (last.effective - first.effective).days,
        "result_count": len(trend),
        "floor": floor,
        "converted": not same,
    }
    return Outcome(
        topic,
        f"Mg fell {fall:.0%} from {first.shown} to {last.shown} on a CNI, below the floor {floor}",
        Finding(
            topic,
            "info",
            values,
            rows(trend[::-1], config),
            (),
            (
                Suggestion(
                    "lab", ("magnesium",), "Recheck Mg sooner: falling on a calcineurin inhibitor"
                ),
            ),
            on_cni=True,
        ),
    )


TOPIC = TopicRule(SPEC, mg_declining)
