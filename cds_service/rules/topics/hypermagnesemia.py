"""hypermagnesemia: a high serum Mg (4.9), and what to stop.

Warning above ``mg_high``, critical above ``mg_critical_high``. On order hooks the warning fires
only when a Mg-containing product is being ordered; critical fires on any order. An active IV
magnesium sulfate infusion (seizure prophylaxis in pre-eclampsia aims for these levels) turns the
card into information about the infusion's monitoring.
"""

from __future__ import annotations

from datetime import timedelta

from ...content import Indicator, Threshold, TopicSpec
from ...facts import Facts, LabResult, is_above, threshold_text
from .._base import (
    Finding,
    MedicationMatch,
    Outcome,
    RuleConfig,
    TopicRule,
    having,
    hook_not_in,
    recheck,
    row,
    rows,
)

SPEC = TopicSpec(
    code="hypermagnesemia",
    title="High serum magnesium",
    hooks=("patient-view", "order-select", "order-sign"),
    indicators=("critical", "warning", "info"),
    values={
        "mg": ("5.2 mg/dL", "2.3 mmol/L"),
        "mg_date": ("2026-11-19",),
        "threshold": ("3.0 mg/dL", "2.00 mmol/L"),
        "stale": (False, True),
        "products": (
            "aluminum hydroxide / magnesium hydroxide",
            "the 2 magnesium-containing products",
            "",
        ),
        "product_list": ("Magnesium Oxide 400 MG Oral Tablet, Milk of Magnesia", ""),
        "infusion": ("magnesium sulfate 40 MG/ML Injectable Solution", ""),
        "egfr": ("24 mL/min/1.73 m2", ""),
        "egfr_source": ("reported eGFR",),
    },
    notes=("kidney",),
    priority=5,
)
_MG_PRODUCTS = frozenset({"oral_mg_supplement", "mg_al_antacid", "mg_laxative", "iv_mg"})


def _to_stop(products: MedicationMatch) -> str:
    """What the summary tells to stop: one product by its ingredients ("magnesium oxide"), or
    how many there are, so the summary keeps its advice within the length limit; the detail
    names every product."""
    names = list(
        dict.fromkeys(" / ".join(sorted(m.ingredients)) or m.display for m in products.meds)
    )
    if len(names) == 1:
        return names[0]
    return f"the {len(names)} magnesium-containing products"


def _tier(mg: LabResult, facts: Facts, config: RuleConfig) -> tuple[Indicator, Threshold] | None:
    t = config.thresholds
    if is_above(mg, t.mg_critical_high):
        stale = mg.effective < facts.now - timedelta(hours=config.windows.critical_max_age_hours)
        return ("warning" if stale else "critical"), t.mg_critical_high
    if is_above(mg, t.mg_high):
        return "warning", t.mg_high
    return None


def hypermagnesemia(facts: Facts, config: RuleConfig) -> Outcome:
    topic = SPEC.code
    if skip := hook_not_in(facts, SPEC):
        return skip
    mg = facts.current.get("magnesium")
    if mg is None:
        return Outcome(topic, f"no Mg result in the last {config.windows.current_lab_days} days")
    tier = _tier(mg, facts, config)
    if tier is None:
        high = threshold_text(mg.family, config.thresholds.mg_high)
        return Outcome(topic, f"current Mg {mg.shown} is not above {high}")
    indicator, line = tier
    infusion = having(facts.active, {"iv_mg"})
    if infusion:  # an intended level: monitoring, not an alarm
        indicator = "info"
    ordering_mg = having(facts.being_ordered, _MG_PRODUCTS)
    if facts.order_hook and indicator != "critical" and not ordering_mg:
        return Outcome(topic, f"Mg {mg.shown} is high; no Mg-containing product is being ordered")
    products = having(facts.present, _MG_PRODUCTS)
    kidney = facts.kidney
    values: dict[str, object] = {
        "mg": mg.shown,
        "mg_date": mg.day,
        "threshold": threshold_text(mg.family, line),
        "stale": indicator == "warning" and line is config.thresholds.mg_critical_high,
        "products": _to_stop(products) if products else "",
        "product_list": products.names,
        "infusion": infusion.names,
        "egfr": kidney.shown if kidney else "",
        "egfr_source": kidney.source if kidney else "",
    }
    found = None if infusion else recheck(facts, ("magnesium", "creatinine"), "Recheck Mg")
    return Outcome(
        topic,
        f"current Mg {mg.shown} ({mg.day}) is above {values['threshold']}"
        + (" on an active IV magnesium sulfate infusion" if infusion else ""),
        Finding(
            topic,
            indicator,
            values,
            (
                *rows(facts.mg_trend[::-1], config),
                *((row(kidney.result, config),) if kidney else ()),
            ),
            ("kidney",) if kidney else (),
            (found,) if found else (),
            products.order_ids,
            on_cni=facts.on_cni,
        ),
    )


TOPIC = TopicRule(SPEC, hypermagnesemia)
