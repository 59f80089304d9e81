"""mg-refractory-hypocalcemia: low Ca with low or unknown Mg (4.1: never delay calcium).

Low Mg may contribute (it impairs PTH secretion). Below the calcium critical lines, or when IV
calcium is being ordered, the card says to treat calcium now without waiting for a Mg result.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...content import TopicSpec
from ...facts import Facts, LabResult, is_below
from .._base import Finding, Outcome, Row, RuleConfig, TopicRule, cni_name, having, hook_not_in, row
from ._electrolytes import mg_state, ordering_required

SPEC = TopicSpec(
    code="mg-refractory-hypocalcemia",
    title="Low calcium with low or unknown magnesium",
    hooks=("patient-view", "order-select", "order-sign"),
    indicators=("warning",),
    values={
        "ca_label": ("Ionized Ca", "Corrected Ca", "Ca"),
        "ca": ("0.95 mmol/L", "7.9 mg/dL (1.97 mmol/L)"),
        "ca_date": ("2026-11-19",),
        "ca_basis": (
            "Ionized calcium is used (it is current and wins over corrected total calcium).",
        ),
        "treat_now": (False, True),
        "iv_calcium": ("calcium gluconate 100 MG/ML Injectable Solution", ""),
        "mg": ("1.3 mg/dL", ""),
        "mg_date": ("2026-11-19", ""),
        "unreadable_date": ("2026-11-18", ""),
        "current_days": (30,),
        "cni": ("cyclosporine", ""),
    },
    notes=("on_cni",),
    priority=40,
)


@dataclass(frozen=True, slots=True)
class _LowCalcium:
    label: str
    shown: str
    basis: str
    critical: bool
    result: LabResult
    rows: tuple[Row, ...]


def _ionized(ionized: LabResult, config: RuleConfig) -> _LowCalcium | str:
    t = config.thresholds
    if not is_below(ionized, t.ca_ionized_low):
        return f"ionized Ca {ionized.shown} is not low"
    basis = "Ionized calcium is used (it is current and wins over corrected total calcium)."
    critical = is_below(ionized, t.ca_ionized_critical)
    return _LowCalcium(
        "Ionized Ca", ionized.shown, basis, critical, ionized, (row(ionized, config),)
    )


def _corrected(facts: Facts, config: RuleConfig) -> _LowCalcium | str:
    corrected = facts.corrected_calcium
    if corrected is None:
        return "no current calcium"
    t = config.thresholds
    total = corrected.calcium
    # Compared in the Ca's own unit family, rounded so that a correction landing exactly on the
    # line is not read as below it; a ">" total is never low.
    if total.family == "mass" and t.ca_total_low.mg_per_dl is not None:
        value, low, critical = (
            round(corrected.corrected_mg_per_dl, 9),
            t.ca_total_low.mg_per_dl,
            t.ca_total_critical.mg_per_dl,
        )
    else:
        value, low, critical = (
            round(corrected.corrected_mmol_per_l, 9),
            t.ca_total_low.mmol_per_l,
            t.ca_total_critical.mmol_per_l,
        )
    if total.comparator in (">", ">=") or not value < low:
        return f"corrected Ca {corrected.shown} is not low"
    is_critical = critical is not None and value < critical
    if corrected.albumin is None:
        basis = (
            "Total calcium, uncorrected: no albumin within "
            f"{config.windows.albumin_pairing_days} days of it."
        )
        return _LowCalcium("Ca", total.shown, basis, is_critical, total, (row(total, config),))
    basis = (
        f"Corrected calcium (Payne) {corrected.shown} from total Ca {total.shown} and "
        f"albumin {corrected.albumin.shown} ({corrected.albumin.day})."
    )
    table = (
        row(total, config),
        row(corrected.albumin, config),
        Row("Corrected calcium (Payne)", corrected.shown, total.day),
    )
    return _LowCalcium("Corrected Ca", corrected.shown_reported, basis, is_critical, total, table)


def refractory_hypocalcemia(facts: Facts, config: RuleConfig) -> Outcome:
    topic = SPEC.code
    if skip := hook_not_in(facts, SPEC):
        return skip
    if reason := ordering_required(facts, {"ca_supplement"}, "calcium supplement"):
        return Outcome(topic, reason)
    ionized = facts.current.get("ionized_calcium")
    low = _ionized(ionized, config) if ionized is not None else _corrected(facts, config)
    if isinstance(low, str):
        return Outcome(topic, low)
    state = mg_state(facts, config)
    if state is None:
        return Outcome(topic, f"{low.label} {low.shown} is low but Mg is not")
    iv_calcium = having(facts.being_ordered, {"ca_supplement"})
    iv_names = ", ".join(m.display for m in iv_calcium.meds if m.route == "parenteral")
    mg = state.mg
    values: dict[str, object] = {
        "ca_label": low.label,
        "ca": low.shown,
        "ca_date": low.result.day,
        "ca_basis": low.basis,
        "treat_now": low.critical or facts.iv_calcium_ordered,
        "iv_calcium": iv_names,
        "mg": mg.shown if mg else "",
        "mg_date": mg.day if mg else "",
        "unreadable_date": state.unreadable.day if state.unreadable else "",
        "current_days": config.windows.current_lab_days,
        "cni": cni_name(facts),
    }
    table = (row(mg, config), *low.rows) if mg else low.rows
    return Outcome(
        topic,
        f"{low.label} {low.shown} low with Mg {state.status}"
        + (" (treat calcium now)" if values["treat_now"] else ""),
        Finding(
            topic,
            "warning",
            values,
            table,
            ("on_cni",) if facts.on_cni else (),
            state.suggestions,
            iv_calcium.order_ids,
            advice=state.plan,
            on_cni=facts.on_cni,
        ),
    )


TOPIC = TopicRule(SPEC, refractory_hypocalcemia)
