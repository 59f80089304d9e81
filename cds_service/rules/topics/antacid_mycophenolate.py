"""antacid-mycophenolate: a Mg/Al antacid with mycophenolate, one of them being ordered."""

from __future__ import annotations

from ...content import TopicSpec
from ...facts import Facts
from .._base import Finding, Outcome, RuleConfig, TopicRule, hook_not_in
from ._pairs import pair

SPEC = TopicSpec(
    code="antacid-mycophenolate",
    title="Magnesium/aluminium antacid with mycophenolate",
    hooks=("order-select", "order-sign", "patient-view"),
    indicators=("warning", "info"),
    values={
        "antacid": ("Aluminum Hydroxide 200 MG / Magnesium Hydroxide 200 MG Chewable Tablet",),
        "mycophenolate": ("mycophenolate mofetil 250 MG Oral Capsule",),
    },
    priority=60,
)


def antacid_mycophenolate(facts: Facts, config: RuleConfig) -> Outcome:
    topic = SPEC.code
    if skip := hook_not_in(facts, SPEC):
        return skip
    found = pair(facts, {"mg_al_antacid"}, {"mycophenolate"})
    if isinstance(found, str):
        return Outcome(topic, f"Mg/Al antacid and mycophenolate: {found}")
    antacid, mycophenolate, indicator = found
    return Outcome(
        topic,
        f"{antacid.names} with {mycophenolate.names}",
        Finding(
            topic,
            indicator,
            {"antacid": antacid.names, "mycophenolate": mycophenolate.names},
            order_ids=(*antacid.order_ids, *mycophenolate.order_ids),
            on_cni=facts.on_cni,
        ),
    )


TOPIC = TopicRule(SPEC, antacid_mycophenolate)
