"""Drug-drug and drug-magnesium interactions at order time."""

from __future__ import annotations

from datetime import timedelta

from ..content import Indicator
from ..facts import Facts, LabResult, is_below
from ._base import (
    Finding,
    MedicationMatch,
    Outcome,
    RuleConfig,
    Suggestion,
    class_names,
    having,
    hook_not_in,
    row,
)

_ALL_HOOKS = ("patient-view", "order-select", "order-sign")
_ORDER_HOOKS = ("order-select", "order-sign")
_WASTING_ORDER = ("ppi", "loop_diuretic", "thiazide", "other_mg_wasting", "mtor_inhibitor")


def _pair(
    facts: Facts, first: set[str], second: set[str]
) -> tuple[MedicationMatch, MedicationMatch, Indicator] | str:
    """Both present with one being ordered (order hooks), or both active (patient-view)."""
    if facts.hook == "patient-view":
        a, b = having(facts.active, first), having(facts.active, second)
        return (a, b, "info") if a and b else "not both active"
    a, b = having(facts.present, first), having(facts.present, second)
    if not (a and b):
        return "not both present"
    if not (having(facts.being_ordered, first) or having(facts.being_ordered, second)):
        return "neither is being ordered"
    return a, b, "warning"


def _latest(facts: Facts, analyte: str, config: RuleConfig) -> LabResult | None:
    start = facts.now - timedelta(days=config.windows.trend_days)
    return next((r for r in facts.results(analyte) if r.effective >= start), None)


def antacid_tacrolimus(facts: Facts, config: RuleConfig) -> Outcome:
    topic = "antacid-tacrolimus"
    if skip := hook_not_in(facts, topic, _ALL_HOOKS):
        return skip
    pair = _pair(facts, {"mg_al_antacid"}, {"tacrolimus"})
    if isinstance(pair, str):
        return Outcome(topic, f"Mg/Al antacid and tacrolimus: {pair}")
    antacid, tacrolimus, indicator = pair
    level = _latest(facts, "tacrolimus_level", config)
    values = {
        "antacid": antacid.names,
        "tacrolimus": tacrolimus.names,
        "tac_level": level.shown if level else "",
        "tac_level_date": level.day if level else "",
        "trend_days": config.windows.trend_days,
    }
    return Outcome(
        topic,
        f"{antacid.names} with {tacrolimus.names}",
        Finding(
            topic,
            indicator,
            values,
            (row(level, config),) if level else (),
            (),
            (
                Suggestion(
                    "lab",
                    "tacrolimus_trough",
                    "Tacrolimus trough after starting or stopping the antacid",
                ),
            ),
            (*antacid.order_ids, *tacrolimus.order_ids),
        ),
    )


def antacid_mycophenolate(facts: Facts, config: RuleConfig) -> Outcome:
    topic = "antacid-mycophenolate"
    if skip := hook_not_in(facts, topic, _ALL_HOOKS):
        return skip
    pair = _pair(facts, {"mg_al_antacid"}, {"mycophenolate"})
    if isinstance(pair, str):
        return Outcome(topic, f"Mg/Al antacid and mycophenolate: {pair}")
    antacid, mycophenolate, indicator = pair
    return Outcome(
        topic,
        f"{antacid.names} with {mycophenolate.names}",
        Finding(
            topic,
            indicator,
            {"antacid": antacid.names, "mycophenolate": mycophenolate.names},
            order_ids=(*antacid.order_ids, *mycophenolate.order_ids),
        ),
    )


def mg_supplement_spacing(facts: Facts, config: RuleConfig) -> Outcome:
    topic = "mg-supplement-spacing"
    if skip := hook_not_in(facts, topic, _ORDER_HOOKS):
        return skip
    supplement = having(facts.being_ordered, {"oral_mg_supplement"})
    if not supplement:
        return Outcome(topic, "no oral Mg supplement being ordered")
    spaced = having(
        [med for med in facts.present if med not in supplement.meds],
        config.groups["needs_mg_spacing"],
    )
    if not spaced:
        return Outcome(topic, "no drug that needs spacing from oral Mg")
    return Outcome(
        topic,
        f"{supplement.names} with {spaced.names}",
        Finding(
            topic,
            "info",
            {"supplement": supplement.names, "spaced": spaced.names},
            order_ids=supplement.order_ids,
        ),
    )


def mg_wasting_comedication(facts: Facts, config: RuleConfig) -> Outcome:
    topic = "mg-wasting-comedication"
    if skip := hook_not_in(facts, topic, _ORDER_HOOKS):
        return skip
    wasting = having(facts.being_ordered, config.groups["mg_wasting"])
    if not wasting:
        return Outcome(topic, "no Mg-wasting drug being ordered")
    cni = having(facts.present, config.groups["cni"])
    mg = facts.current.get("magnesium")
    mg_low_for_context = mg is not None and is_below(mg, config.thresholds.mg_cni_target)
    if not cni and not mg_low_for_context:
        return Outcome(
            topic, "Mg-wasting drug ordered, but not on a CNI and Mg not below the CNI target"
        )
    indicator: Indicator = (
        "warning" if mg is not None and is_below(mg, config.thresholds.mg_low) else "info"
    )
    found = {cls for med in wasting.meds for cls in med.classes}
    drug_class = next(cls for cls in _WASTING_ORDER if cls in found)
    first = having(wasting.meds, {drug_class})
    values = {
        "drug": first.names,
        "drug_class": config.class_display[drug_class],
        "mg": mg.shown if mg else "",
        "mg_date": mg.day if mg else "",
        "cni": class_names(cni, ("tacrolimus", "cyclosporine"), config),
        "mechanism_key": drug_class,
    }
    return Outcome(
        topic,
        f"{first.names} ({drug_class}) ordered" + (f" with Mg {mg.shown}" if mg else " on a CNI"),
        Finding(
            topic, indicator, values, (row(mg, config),) if mg else (), order_ids=wasting.order_ids
        ),
    )
