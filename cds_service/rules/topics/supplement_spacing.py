"""mg-supplement-spacing: oral magnesium and a drug whose absorption it reduces (4.10).

Fires when either side is being ordered: an oral Mg-containing product (supplement, Mg/Al
antacid, Mg laxative) with a drug of the spacing table active or ordered, or such a drug ordered
for a patient taking oral magnesium; not when every order is a renewal of a drug the patient
already takes (the pair is not new). Oral on both sides only. Each drug's interval comes from its
label, in ``cards/medications.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ...content import Spacing, TopicSpec
from ...facts import Facts, MedicationFact
from .._base import Finding, MedicationMatch, Outcome, RuleConfig, TopicRule, hook_not_in

SPEC = TopicSpec(
    code="mg-supplement-spacing",
    title="Space oral magnesium from drugs it binds",
    hooks=("order-select", "order-sign"),
    indicators=("info",),
    values={
        "supplement": ("magnesium oxide",),
        "supplement_products": ("Magnesium Oxide 400 MG Oral Tablet",),
        "spacing_short": (
            "ciprofloxacin (2 h before or 6 h after the magnesium)",
            "levothyroxine (4 h apart), tacrolimus (2 h apart)",
        ),
        "spacing": (
            (
                {
                    "drug": "Ciprofloxacin 500 MG Oral Tablet",
                    "interval": "2 h before or 6 h after the magnesium",
                    "sources": ("cipro-label", "003"),
                },
            ),
        ),
    },
    priority=70,
)


def _interval(med: MedicationFact, table: Mapping[str, Spacing]) -> Spacing | None:
    for key in (*sorted(med.ingredients), *sorted(med.classes)):
        if key in table:
            return table[key]
    return None


def _renewal(med: MedicationFact, facts: Facts) -> bool:
    """An order for an ingredient the patient already has an active order of."""
    return bool(med.ingredients) and any(
        med.ingredients & active.ingredients for active in facts.active
    )


def _oral(meds: Sequence[MedicationFact], classes: frozenset[str]) -> list[MedicationFact]:
    return [m for m in meds if m.classes & classes and m.oral]


def mg_supplement_spacing(facts: Facts, config: RuleConfig) -> Outcome:
    topic = SPEC.code
    if skip := hook_not_in(facts, SPEC):
        return skip
    mg_classes = config.groups["oral_mg_containing"]
    spaced_classes = config.groups["needs_mg_spacing"]
    ordered = facts.being_ordered
    mg_ordered = _oral(ordered, mg_classes)
    spaced_ordered = _oral(ordered, spaced_classes)
    if not mg_ordered and not spaced_ordered:
        return Outcome(topic, "neither an oral Mg product nor a drug it binds is being ordered")
    if all(_renewal(m, facts) for m in (*mg_ordered, *spaced_ordered)):
        # Both drugs already taken together: a renewal changes nothing about their timing.
        return Outcome(topic, "only renewals of drugs already taken together are being ordered")
    mg_side = mg_ordered + [m for m in _oral(facts.present, mg_classes) if spaced_ordered]
    spaced = spaced_ordered + [m for m in _oral(facts.present, spaced_classes) if mg_ordered]
    mg_side = list(dict.fromkeys(mg_side))
    spaced = [m for m in dict.fromkeys(spaced) if m not in mg_side]
    if not mg_side or not spaced:
        return Outcome(topic, "no oral Mg product with a drug it binds (oral on both sides)")
    items = []
    for med in spaced:
        entry = _interval(med, config.spacing)
        if entry is not None:
            items.append(
                {
                    "drug": med.display,
                    "short": MedicationMatch((med,)).short_names,
                    "interval": entry.interval,
                    "sources": tuple(entry.sources),
                }
            )
    if not items:
        return Outcome(topic, "no spacing interval configured for the drugs present")
    supplement = MedicationMatch(tuple(mg_side))
    values = {
        "supplement": supplement.short_names,
        "supplement_products": supplement.names,
        "spacing_short": ", ".join(f"{i['short']} ({i['interval']})" for i in items),
        "spacing": tuple(items),
    }
    orders = MedicationMatch(tuple(m for m in (*mg_side, *spaced) if m.being_ordered))
    return Outcome(
        topic,
        f"{supplement.names} with {', '.join(str(i['drug']) for i in items)}",
        Finding(topic, "info", values, order_ids=orders.order_ids, on_cni=facts.on_cni),
    )


TOPIC = TopicRule(SPEC, mg_supplement_spacing)
