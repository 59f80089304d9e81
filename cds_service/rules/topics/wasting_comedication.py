"""mg-wasting-comedication: a Mg-wasting drug being ordered (4.11).

For a patient on a CNI or with Mg below the CNI target; only for a new drug (no active order of
the same ingredient), or when Mg is below the CNI target or unknown: a renewal of a drug the
patient already takes, with a normal Mg, gets no card. K-sparing diuretics are never advised in a
summary; in the detail only off a CNI, with eGFR of at least the IV-cap line and K below
``k_sparing_max``, and always with "monitor potassium". On a CNI the detail warns that CNIs raise
potassium instead.
"""

from __future__ import annotations

from ...content import Indicator, TopicSpec
from ...facts import Facts, MedicationFact, is_below
from .._base import (
    Finding,
    MedicationMatch,
    Outcome,
    RuleConfig,
    TopicRule,
    cni_name,
    having,
    hook_not_in,
    row,
)

SPEC = TopicSpec(
    code="mg-wasting-comedication",
    title="Magnesium-wasting drug ordered",
    hooks=("order-select", "order-sign"),
    indicators=("warning", "info"),
    values={
        "drug": ("Furosemide 20 MG Oral Tablet",),
        "drug_short": ("furosemide", "cisplatin"),
        "drug_class": ("loop diuretic",),
        "mg": ("1.4 mg/dL", ""),
        "mg_date": ("2026-11-19", ""),
        "cni": ("tacrolimus", ""),
        "renewal": (False, True),
        "diuretic": (True, False),
        "k": ("4.1 mmol/L", ""),
        "k_sparing_ok": (False, True),
        "ppi_tacrolimus": (False, True),
        "ppi_mmf": (False, True),
        "mechanism_key": ("ppi", "loop_diuretic", "other_mg_wasting"),
    },
    mechanisms=("ppi", "loop_diuretic", "thiazide", "other_mg_wasting", "mtor_inhibitor"),
    priority=80,
)
_ORDER = ("ppi", "loop_diuretic", "thiazide", "other_mg_wasting", "mtor_inhibitor")


def _is_new(med: MedicationFact, facts: Facts, wasting: frozenset[str]) -> bool:
    """No active order of the same ingredient (of the same product, without ingredients)."""
    for active in facts.active:
        if not active.classes & wasting:
            continue
        if med.ingredients and med.ingredients & active.ingredients:
            return False
        if not med.ingredients and active.display == med.display:
            return False
    return True


def _k_sparing_ok(facts: Facts, config: RuleConfig) -> bool:
    k = facts.current.get("potassium")
    kidney = facts.kidney
    return (
        not facts.on_cni
        and kidney is not None
        and not kidney.below_cap
        and k is not None
        and is_below(k, config.thresholds.k_sparing_max)
    )


def mg_wasting_comedication(facts: Facts, config: RuleConfig) -> Outcome:
    topic = SPEC.code
    if skip := hook_not_in(facts, SPEC):
        return skip
    wasting_classes = config.groups["mg_wasting"]
    ordered = having(facts.being_ordered, wasting_classes)
    if not ordered:
        return Outcome(topic, "no Mg-wasting drug being ordered")
    mg = facts.current.get("magnesium")
    below_target = mg is not None and is_below(mg, config.thresholds.mg_cni_target)
    if not facts.on_cni and not below_target:
        return Outcome(
            topic, "Mg-wasting drug ordered, but not on a CNI and Mg not below the CNI target"
        )
    new = [med for med in ordered.meds if _is_new(med, facts, wasting_classes)]
    if not new and mg is not None and not below_target:
        return Outcome(topic, f"renewal of a drug already taken, with Mg {mg.shown}")
    indicator: Indicator = (
        "warning" if mg is not None and is_below(mg, config.thresholds.mg_low) else "info"
    )
    candidates = MedicationMatch(tuple(new or ordered.meds))
    found = {cls for med in candidates.meds for cls in med.classes}
    drug_class = next(cls for cls in _ORDER if cls in found)
    first = having(candidates.meds, {drug_class})
    k = facts.current.get("potassium")
    is_ppi = drug_class == "ppi"
    values: dict[str, object] = {
        "drug": first.names,
        "drug_short": first.short_names,
        "drug_class": config.class_display[drug_class],
        "mg": mg.shown if mg else "",
        "mg_date": mg.day if mg else "",
        "cni": cni_name(facts),
        "renewal": not new,
        "diuretic": drug_class in ("loop_diuretic", "thiazide"),
        "k": k.shown if k else "",
        "k_sparing_ok": _k_sparing_ok(facts, config),
        "ppi_tacrolimus": is_ppi and facts.on_tacrolimus,
        "ppi_mmf": is_ppi and any("mycophenolate mofetil" in m.ingredients for m in facts.present),
        "mechanism_key": drug_class,
    }
    table = tuple(row(r, config) for r in (mg, k) if r is not None)
    return Outcome(
        topic,
        f"{first.names} ({drug_class}) ordered"
        + (" (renewal)" if not new else " (new)")
        + (f" with Mg {mg.shown}" if mg else ", no current Mg"),
        Finding(topic, indicator, values, table, order_ids=ordered.order_ids, on_cni=facts.on_cni),
    )


TOPIC = TopicRule(SPEC, mg_wasting_comedication)
