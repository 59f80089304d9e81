"""mg-digoxin: digoxin with a Mg below the digoxin target (4.2).

The target is 2 mg/dL (0.82 mmol/L): the seed's "2 mEq/L" is a unit slip (2 mEq/L is 1.0 mmol/L,
2.43 mg/dL, above the normal range), and the card says so. Its magnesium advice follows the same
kidney, age and supplement gating as every card that advises magnesium.
"""

from __future__ import annotations

from ...content import TopicSpec
from ...facts import Facts, format_number, is_below, threshold_text
from .._advice import plan_magnesium
from .._base import Finding, Outcome, RuleConfig, TopicRule, having, hook_not_in, row

SPEC = TopicSpec(
    code="mg-digoxin",
    title="Low magnesium with digoxin",
    hooks=("patient-view", "order-select"),
    indicators=("warning",),
    values={
        "mg": ("1.9 mg/dL", "0.75 mmol/L"),
        "mg_date": ("2026-11-19",),
        "target": ("2.0 mg/dL", "0.82 mmol/L"),
        "target_both": ("2.0 mg/dL (0.82 mmol/L)",),
        "digoxin": ("Digoxin 0.125 MG Oral Tablet",),
        "egfr": ("24 mL/min/1.73 m2", ""),
        "egfr_source": ("reported eGFR",),
    },
    notes=("kidney",),
    priority=20,
)


def mg_digoxin(facts: Facts, config: RuleConfig) -> Outcome:
    topic = SPEC.code
    if skip := hook_not_in(facts, SPEC):
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
    target_text = threshold_text(mg.family, target)
    if not is_below(mg, target):
        return Outcome(topic, f"digoxin with Mg {mg.shown}, not below {target_text}")
    # As the contract writes the target: "2 mg/dL (0.82 mmol/L)".
    mass = f"{format_number(target.mg_per_dl)} mg/dL" if target.mg_per_dl else ""
    molar = threshold_text("molar", target)
    values = {
        "mg": mg.shown,
        "mg_date": mg.day,
        "target": target_text,
        "target_both": f"{mass} ({molar})" if mass else molar,
        "digoxin": digoxin.names,
        "egfr": facts.kidney.shown if facts.kidney else "",
        "egfr_source": facts.kidney.source if facts.kidney else "",
    }
    return Outcome(
        topic,
        f"digoxin ({digoxin.names}) with Mg {mg.shown} below {target_text}",
        Finding(
            topic,
            "warning",
            values,
            (row(mg, config),),
            ("kidney",) if facts.kidney else (),
            (),
            digoxin.order_ids,
            advice=plan_magnesium(facts, config, "oral"),
            on_cni=facts.on_cni,
        ),
    )


TOPIC = TopicRule(SPEC, mg_digoxin)
