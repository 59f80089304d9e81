"""What to say about giving magnesium, for every card that advises it.

One plan for ``hypomagnesemia``, ``mg-digoxin`` and the refractory K/Ca cards, so kidney
function, age and what the patient already gets change the advice the same way everywhere:

- IV magnesium already active or ordered: name it, no second order;
- kidney failure (eGFR < 15 or a kidney-failure Condition): no repletion dose, "dose with
  nephrology", the IV cap stays; no order;
- a child: weight-based text (with the mg range for the latest weight); no fixed-dose order;
- eGFR 15-29: a reduced oral dose with a check within a week, the IV cap; no order;
- an oral supplement already active: increase or split, check adherence; no new order;
- otherwise: the formulary's product and dose, and its order.

The texts live in ``cards/advice.yaml``; this module only chooses their keys and values.
"""

from __future__ import annotations

from typing import Literal

from ..content import AdviceSpec
from ..facts import Facts, format_number
from ._base import MgPlan, RuleConfig, Suggestion, having

Route = Literal["iv", "oral"]

_EXAMPLES: dict[str, tuple[object, ...]] = {
    "oral_mg": ("magnesium oxide", "magnesium aspartate", "2 Mg supplements", ""),
    "oral_mg_products": ("Magnesium Oxide 400 MG Oral Tablet", ""),
    "iv_mg": ("magnesium sulfate", ""),
    "iv_mg_products": ("magnesium sulfate 40 MG/ML Injectable Solution", ""),
    "oral_dose": ("1 tablet (400 mg magnesium oxide, about 10 mmol Mg) by mouth at night",),
    "oral_product": ("Magnesium Oxide 400 MG Oral Tablet",),
    "child_mg_per_kg": ("25-50 mg/kg",),
    "child_max": ("2 g",),
    "child_range": ("450-900 mg", ""),
    "weight": ("18 kg", ""),
    "weight_date": ("2026-11-18", ""),
    "weight_days": (30,),
    "egfr_cap": (30,),
    "egfr": ("24 mL/min/1.73 m2", ""),
    "iv_cap": ("20 g per 48 h",),
    "kidney_failure_source": ("Condition: Dependence on renal dialysis", ""),
}

ADVICE_SPEC = AdviceSpec(
    actions=(
        "iv_given",
        "kidney_failure",
        "kidney_failure_iv",
        "iv_child",
        "iv_capped",
        "iv_give",
        "oral_child",
        "oral_child_on",
        "oral_reduced",
        "oral_reduced_on",
        "oral_more",
        "oral_start",
    ),
    cautions=("iv_given", "kidney_failure", "child", "reduced"),
    lines=(
        "iv_given",
        "iv_recheck",
        "kidney_failure",
        "iv_cap_failure",
        "iv_child",
        "iv_cap",
        "iv_adult",
        "iv_on_oral",
        "oral_child",
        "oral_reduced",
        "oral_more",
        "oral_start_ordered",
        "oral_start",
        "oral_salts",
    ),
    values=_EXAMPLES,
)


def _values(facts: Facts, config: RuleConfig) -> dict[str, object]:
    dosing = config.dosing
    low, high = dosing.paediatric_iv_mg_per_kg_min, dosing.paediatric_iv_mg_per_kg_max
    weight = facts.weight
    child_range = ""
    if weight is not None:
        kg = weight.canonical
        top = dosing.paediatric_iv_max_mg
        # Half up, as a dose is read ("462.5" is 463), not to the even neighbour.
        least, most = int(min(low * kg, top) + 0.5), int(min(high * kg, top) + 0.5)
        child_range = f"{format_number(least)}-{format_number(most)} mg"
    max_mg = dosing.paediatric_iv_max_mg
    oral = having(facts.active, {"oral_mg_supplement"})
    iv = having((*facts.active, *facts.being_ordered), {"iv_mg"})
    return {
        # Summaries name one supplement; several are counted (the detail lists them).
        "oral_mg": oral.short_names if len(oral.meds) < 2 else f"{len(oral.meds)} Mg supplements",
        "oral_mg_products": oral.names,
        "iv_mg": iv.short_names,
        "iv_mg_products": iv.names,
        "oral_dose": config.oral_dose,
        "oral_product": config.oral_product,
        "child_mg_per_kg": f"{format_number(low)}-{format_number(high)} mg/kg",
        "child_max": f"{format_number(max_mg / 1000)} g"
        if max_mg >= 1000
        else f"{format_number(max_mg)} mg",
        "child_range": child_range,
        "weight": weight.shown if weight is not None else "",
        "weight_date": weight.day if weight is not None else "",
        "weight_days": config.windows.weight_max_age_days,
        "egfr_cap": format_number(config.thresholds.egfr_iv_cap),
        "egfr": facts.kidney.shown if facts.kidney else "",
        "iv_cap": f"{format_number(dosing.renal_iv_cap_g)} g per {dosing.renal_iv_cap_hours} h",
        "kidney_failure_source": facts.kidney_failure_source or "",
    }


def _iv(facts: Facts, config: RuleConfig) -> tuple[str, tuple[str, ...], Suggestion | None]:
    # An oral supplement already taken is named in every tier (4.3): it has not kept Mg up.
    on_oral = ("iv_on_oral",) if facts.taking_oral_mg else ()
    if facts.child:
        cap = ("iv_cap",) if facts.egfr_below_cap else ()
        return "iv_child", ("iv_child", *cap, *on_oral), None
    if facts.egfr_below_cap:
        return "iv_capped", ("iv_adult", "iv_cap", *on_oral), None
    return "iv_give", ("iv_adult", *on_oral), Suggestion("medication", ("iv_magnesium",))


def _oral(facts: Facts, config: RuleConfig) -> tuple[str, tuple[str, ...], Suggestion | None]:
    on = facts.taking_oral_mg
    if facts.child:
        lines = ("oral_child", *(("oral_reduced",) if facts.egfr_below_cap else ()))
        return ("oral_child_on" if on else "oral_child"), lines, None
    if facts.egfr_below_cap:
        return ("oral_reduced_on" if on else "oral_reduced"), ("oral_reduced", "iv_cap"), None
    if on:
        return "oral_more", ("oral_more",), None
    if config.can_order("medication", "oral_magnesium"):
        start = ("oral_start_ordered", "oral_salts")
        return "oral_start", start, Suggestion("medication", ("oral_magnesium",))
    return "oral_start", ("oral_start", "oral_salts"), None


# The short caution a summary adds when the advice differs from a plain adult dose.
_CAUTIONS = {
    "iv_given": "iv_given",
    "kidney_failure": "kidney_failure",
    "kidney_failure_iv": "kidney_failure",
    "iv_child": "child",
    "oral_child": "child",
    "oral_child_on": "child",
    "iv_capped": "reduced",
    "oral_reduced": "reduced",
    "oral_reduced_on": "reduced",
}


def plan_magnesium(facts: Facts, config: RuleConfig, route: Route) -> MgPlan:
    """The magnesium advice for this patient, for IV or oral repletion."""
    values = _values(facts, config)
    if facts.iv_mg_given:
        lines = ("iv_given", "iv_recheck", *(("iv_cap",) if facts.egfr_below_cap else ()))
        return MgPlan("iv_given", _CAUTIONS["iv_given"], lines, values, None)
    if facts.kidney_failure:
        # No repletion dose in kidney failure, but a critical Mg still needs treating now.
        action = "kidney_failure_iv" if route == "iv" else "kidney_failure"
        lines = ("kidney_failure", "iv_cap_failure")
        return MgPlan(action, _CAUTIONS[action], lines, values, None)
    action, lines, suggestion = _iv(facts, config) if route == "iv" else _oral(facts, config)
    return MgPlan(action, _CAUTIONS.get(action), lines, values, suggestion)


__all__ = ["ADVICE_SPEC", "plan_magnesium"]
