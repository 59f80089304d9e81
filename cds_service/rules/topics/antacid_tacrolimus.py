"""antacid-tacrolimus: a Mg/Al antacid with tacrolimus, one of them being ordered."""

from __future__ import annotations

from ...content import TopicSpec
from ...facts import Facts
from .._base import Finding, Outcome, RuleConfig, Suggestion, TopicRule, hook_not_in, row
from ._pairs import latest_within_trend, pair

SPEC = TopicSpec(
    code="antacid-tacrolimus",
    title="Magnesium/aluminium antacid with tacrolimus",
    hooks=("order-select", "order-sign", "patient-view"),
    indicators=("warning", "info"),
    values={
        "antacid": ("Aluminum Hydroxide 200 MG / Magnesium Hydroxide 200 MG Chewable Tablet",),
        "tacrolimus": ("Tacrolimus 1 MG Oral Capsule",),
        "tac_level": ("7.2 ng/mL", ""),
        "tac_level_date": ("2026-11-17", ""),
        "trend_days": (180,),
    },
    priority=50,
)


def antacid_tacrolimus(facts: Facts, config: RuleConfig) -> Outcome:
    topic = SPEC.code
    if skip := hook_not_in(facts, SPEC):
        return skip
    found = pair(facts, {"mg_al_antacid"}, {"tacrolimus"})
    if isinstance(found, str):
        return Outcome(topic, f"Mg/Al antacid and tacrolimus: {found}")
    antacid, tacrolimus, indicator = found
    level = latest_within_trend(facts, "tacrolimus_level", config)
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
                    ("tacrolimus_trough",),
                    "Tacrolimus trough after starting or stopping the antacid",
                ),
            ),
            (*antacid.order_ids, *tacrolimus.order_ids),
            on_cni=facts.on_cni,
        ),
    )


TOPIC = TopicRule(SPEC, antacid_tacrolimus)
