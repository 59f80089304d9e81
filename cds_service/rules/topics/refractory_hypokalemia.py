"""mg-refractory-hypokalemia: low K with low or unknown Mg (4.1: never delay potassium).

Mg is repleted alongside K, never instead of it. Below ``k_critical`` the card says plainly to
treat potassium now, and with no current Mg not to wait for one.
"""

from __future__ import annotations

from datetime import timedelta

from ...content import Indicator, TopicSpec
from ...facts import Facts, is_below
from .._base import Finding, Outcome, Row, RuleConfig, TopicRule, cni_name, having, hook_not_in, row
from ._electrolytes import mg_state, ordering_required

SPEC = TopicSpec(
    code="mg-refractory-hypokalemia",
    title="Low potassium with low or unknown magnesium",
    hooks=("patient-view", "order-select", "order-sign"),
    indicators=("critical", "warning"),
    values={
        "k": ("3.2 mmol/L", "2.8 mmol/L"),
        "k_date": ("2026-11-19",),
        "mg": ("1.1 mg/dL", ""),
        "mg_date": ("2026-11-19", ""),
        "treat_now": (False, True),
        "unreadable_date": ("2026-11-18", ""),
        "mg_stale": (False, True),
        "critical_hours": (72,),
        "current_days": (30,),
        "persistent": (False, True),
        "k_supplements": ("Potassium Chloride 20 MEQ Extended Release Oral Tablet", ""),
        "low_count": (2,),
        "low_since": ("2026-11-10", ""),
        "cni": ("tacrolimus", ""),
    },
    notes=("on_cni",),
    priority=30,
)


def refractory_hypokalemia(facts: Facts, config: RuleConfig) -> Outcome:
    topic = SPEC.code
    if skip := hook_not_in(facts, SPEC):
        return skip
    if reason := ordering_required(facts, {"k_supplement"}, "potassium supplement"):
        return Outcome(topic, reason)
    k = facts.current.get("potassium")
    if k is None or not is_below(k, config.thresholds.k_low):
        return Outcome(
            topic, "no current low potassium" if k is None else f"K {k.shown} is not low"
        )
    state = mg_state(facts, config)
    if state is None:
        mg_shown = facts.current["magnesium"].shown
        return Outcome(topic, f"K {k.shown} is low but Mg {mg_shown} is not")
    treat_now = is_below(k, config.thresholds.k_critical)
    # Critical needs a low Mg no older than the critical window (4.3).
    critical = state.status == "low" and state.recent and treat_now
    indicator: Indicator = "critical" if critical else "warning"
    k_supplements = having(facts.active, {"k_supplement"})
    window_start = facts.now - timedelta(days=config.windows.current_lab_days)
    low_k = [
        r
        for r in facts.results("potassium")
        if r.effective >= window_start and is_below(r, config.thresholds.k_low)
    ]
    mg = state.mg
    values: dict[str, object] = {
        "k": k.shown,
        "k_date": k.day,
        "mg": mg.shown if mg else "",
        "mg_date": mg.day if mg else "",
        "treat_now": treat_now,
        "unreadable_date": state.unreadable.day if state.unreadable else "",
        "mg_stale": state.stale_critical,
        "critical_hours": config.windows.critical_max_age_hours,
        "current_days": config.windows.current_lab_days,
        "persistent": bool(k_supplements) and len(low_k) >= 2,
        "k_supplements": k_supplements.names,
        "low_count": len(low_k),
        "low_since": low_k[-1].day if low_k else "",
        "cni": cni_name(facts),
    }
    table: list[Row] = [row(r, config) for r in facts.results("potassium")[:3]]
    if mg:
        table.insert(0, row(mg, config))
    return Outcome(
        topic,
        f"K {k.shown} below {config.thresholds.k_low.mmol_per_l:g} mmol/L with Mg {state.status}",
        Finding(
            topic,
            indicator,
            values,
            tuple(table),
            ("on_cni",) if facts.on_cni else (),
            state.suggestions,
            having(facts.being_ordered, {"k_supplement"}).order_ids,
            advice=state.plan,
            on_cni=facts.on_cni,
        ),
    )


TOPIC = TopicRule(SPEC, refractory_hypokalemia)
