"""What the rule tests need beyond ``tests/facts/builders.py``: more drugs, Conditions, body
weights, routes, ``doNotPerform``, ``valueString`` results, and a rendered card to read.

Everything is evaluated at ``FIXED_NOW`` (2026-11-20 12:00 UTC), like the builders.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cds_service.content import Content
from cds_service.facts import Facts, build_facts
from cds_service.render import render_card
from cds_service.rules import Finding, Outcome, RuleConfig, run_rules
from tests.cardwording import check_wording
from tests.facts.builders import (
    DRUGS,
    FIXED_NOW,
    LOINC,
    MG,
    MG_MOLAR,
    PATIENT_ID,
    date_of,
    med_request,
    model,
    models,
    observation,
    patient,
    shipped,
)

SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
WEIGHT = "29463-7"
CYCLOSPORINE_LEVEL = "3520-4"
HOOKS = ("patient-view", "order-select", "order-sign")
ORDER_HOOKS = ("order-select", "order-sign")

# (RxNorm code or None, display) of more drugs; codes are ingredient codes where the product
# code is not in the shipped table, so they classify through the ingredient.
MORE_DRUGS: dict[str, tuple[str | None, str]] = {
    "mg_sulfate_iv": ("6585", "magnesium sulfate 500 MG/ML Injectable Solution"),
    "mg_chloride": ("6579", "Magnesium Chloride 64 MG Delayed Release Oral Tablet"),
    "milk_of_magnesia": (None, "Milk of Magnesia 400 MG/5ML Oral Suspension"),
    "epsom_salt": (None, "Epsom salt (magnesium sulfate) oral powder"),
    "mg_citrate_solution": (None, "Magnesium Citrate 1.745 GM/30ML Oral Solution"),
    "ca_gluconate_iv": ("1908", "calcium gluconate 100 MG/ML Injectable Solution"),
    "ca_carbonate": ("198527", "Calcium Carbonate 250 MG Oral Tablet"),
    "ciprofloxacin": ("2551", "ciprofloxacin 500 MG Oral Tablet"),
    "levofloxacin": ("82122", "levofloxacin 500 MG Oral Tablet"),
    "levofloxacin_iv": ("82122", "levofloxacin 5 MG/ML Injectable Solution"),
    "moxifloxacin": ("139462", "moxifloxacin 400 MG Oral Tablet"),
    "doxycycline": ("3640", "doxycycline hyclate 100 MG Oral Capsule"),
    "minocycline": ("6980", "minocycline 100 MG Oral Capsule"),
    "tetracycline": ("10395", "tetracycline 250 MG Oral Capsule"),
    "alendronate": ("46041", "alendronate 70 MG Oral Tablet"),
    "risedronate": ("73056", "risedronate 35 MG Oral Tablet"),
    "ibandronate": ("115264", "ibandronate 150 MG Oral Tablet"),
    "dolutegravir": ("1433868", "dolutegravir 50 MG Oral Tablet"),
    "bictegravir": ("1999663", "bictegravir 50 MG Oral Tablet"),
    "eltrombopag": ("711942", "eltrombopag 50 MG Oral Tablet"),
    "cefdinir": ("25033", "cefdinir 300 MG Oral Capsule"),
    "penicillamine": ("7975", "penicillamine 250 MG Oral Capsule"),
    "ferrous_sulfate": (None, "ferrous sulfate 325 MG Oral Tablet"),
    "tacrolimus_iv": ("42316", "tacrolimus 5 MG/ML Injectable Solution"),
    "tacrolimus_ointment": (None, "Tacrolimus 0.1 % Topical Ointment"),
    "pantoprazole": ("40790", "pantoprazole 40 MG Delayed Release Oral Tablet"),
    "lansoprazole": ("17128", "lansoprazole 30 MG Delayed Release Oral Capsule"),
    "esomeprazole": ("283742", "esomeprazole 40 MG Delayed Release Oral Capsule"),
    "mycophenolic_acid": ("7145", "mycophenolic acid 360 MG Delayed Release Oral Tablet"),
    "carboplatin": ("40048", "carboplatin 10 MG/ML Injectable Solution"),
    "ifosfamide": ("5657", "ifosfamide 1 GM Injection"),
    "zoledronic_acid": ("77655", "zoledronic acid 4 MG Injection"),
    "cisplatin": ("2555", "cisplatin 1 MG/ML Injectable Solution"),
    "tobramycin_inhaled": ("10627", "tobramycin 300 MG/5ML Inhalation Solution"),
}

_ids = itertools.count(1)


def med(drug: str, **kw: Any) -> dict[str, Any]:
    """A MedicationRequest for a drug of ``DRUGS`` or ``MORE_DRUGS`` (code and display, or the
    display as text when there is no code)."""
    code, display = MORE_DRUGS[drug] if drug in MORE_DRUGS else DRUGS[drug]
    kw.setdefault("req_id", f"{drug}-k{next(_ids)}")
    if code is None:
        return med_request(text=display, **kw)
    return med_request(code, display, **kw)


def order(drug: str, **kw: Any) -> dict[str, Any]:
    """A draft order of ``drug`` (as found in context.draftOrders)."""
    kw.setdefault("status", "draft")
    kw.setdefault("authored_days_ago", 0)
    return med(drug, **kw)


def with_route(resource: dict[str, Any], code: str, display: str) -> dict[str, Any]:
    """The resource with a SNOMED dosage route."""
    resource["dosageInstruction"] = [
        {"text": "as directed", "route": {"coding": [{"system": SNOMED, "code": code}]}}
    ]
    resource["dosageInstruction"][0]["route"]["coding"][0]["display"] = display
    return resource


def not_to_give(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource as an order *not* to give the drug."""
    resource["doNotPerform"] = True
    return resource


def renewing(resource: dict[str, Any], prior: str = "MedicationRequest/old-1") -> dict[str, Any]:
    resource["priorPrescription"] = {"reference": prior}
    return resource


def statement(drug: str, *, started_days_ago: float = 200, **kw: Any) -> dict[str, Any]:
    """An active MedicationStatement of ``drug``."""
    return med(
        drug,
        resource_type="MedicationStatement",
        authored_days_ago=started_days_ago,
        **kw,
    )


def value_string(code: str, text: str, days_ago: float = 1, **kw: Any) -> dict[str, Any]:
    """An Observation whose value is written as text (``valueString``)."""
    resource = observation(code, None, "", days_ago, **kw)
    resource.pop("valueQuantity", None)
    resource["valueString"] = text
    return resource


def weight(value: float, unit: str = "kg", days_ago: float = 3, **kw: Any) -> dict[str, Any]:
    """A body weight (LOINC 29463-7)."""
    return observation(WEIGHT, value, unit, days_ago, **kw)


def at_hours(hours: float) -> str:
    """An ISO dateTime exactly ``hours`` before FIXED_NOW."""
    return (FIXED_NOW - timedelta(hours=hours)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def mg_hours_ago(value: float, unit: str, hours: float, **kw: Any) -> dict[str, Any]:
    """A Mg result exactly ``hours`` before FIXED_NOW."""
    code = MG if unit.lower() in ("mg/dl", "mg/l") else MG_MOLAR
    return observation(code, value, unit, effective=at_hours(hours), **kw)


def condition(
    code: str = "46177005",
    system: str = SNOMED,
    display: str = "End-stage renal disease",
    *,
    clinical: str | None = "active",
    verification: str | None = "confirmed",
    abated_days_ago: float | None = None,
    cond_id: str | None = None,
) -> dict[str, Any]:
    """A Condition (by default active ESRD, confirmed)."""
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cond_id or f"cond-{next(_ids)}",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": {"coding": [{"system": system, "code": code, "display": display}]},
    }
    if clinical is not None:
        resource["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": clinical}]}
    if verification is not None:
        resource["verificationStatus"] = {
            "coding": [{"system": VERIFICATION, "code": verification}]
        }
    if abated_days_ago is not None:
        resource["abatementDateTime"] = date_of(abated_days_ago)
    return resource


def serum_mg_order(req_id: str = "mg-lab") -> dict[str, Any]:
    """A serum Mg ServiceRequest among the draft orders."""
    return {
        "resourceType": "ServiceRequest",
        "id": req_id,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": {"coding": [{"system": LOINC, "code": "19123-9"}]},
    }


def child_born(years_ago: int, *, days_more: int = 0) -> dict[str, Any]:
    """A Patient ``years_ago`` years (and ``days_more`` days) old at FIXED_NOW."""
    born = date(2026 - years_ago, 11, 20) - timedelta(days=days_more)
    return {
        "resourceType": "Patient",
        "id": PATIENT_ID,
        "birthDate": born.isoformat(),
        "gender": "male",
    }


# ---------------------------------------------------------------------------------------------
# Facts and outcomes, with Conditions in the prefetch (the shared builder has no such key).


def facts(
    hook: str = "patient-view",
    *,
    labs: Sequence[Mapping[str, Any]] = (),
    meds: Sequence[Mapping[str, Any]] = (),
    statements: Sequence[Mapping[str, Any]] = (),
    drafts: Sequence[Mapping[str, Any]] = (),
    conditions: Sequence[Mapping[str, Any]] = (),
    selections: Sequence[str] | None = None,
    pat: Mapping[str, Any] | None = None,
    no_patient: bool = False,
    content: Content | None = None,
    now: datetime = FIXED_NOW,
) -> Facts:
    """Facts for a hook call; in order-select, ``selections`` defaults to every draft."""
    context: dict[str, Any] = {"userId": "Practitioner/example", "patientId": PATIENT_ID}
    if hook in ORDER_HOOKS:
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": dict(d)} for d in drafts],
        }
    if hook == "order-select":
        context["selections"] = (
            list(selections)
            if selections is not None
            else [f"{d['resourceType']}/{d['id']}" for d in drafts]
        )
    resources = {
        "patient": [] if no_patient else [model(pat or patient())],
        "observations": models(labs),
        "medicationRequests": models(meds),
        "medicationStatements": models(statements),
        "conditions": models(conditions),
    }
    return build_facts(
        hook=hook,
        context=context,
        resources=resources,
        draft_orders=models(drafts),
        medications={},
        content=content or shipped(),
        now=now,
    )


def outcomes_of(hook: str = "patient-view", **kw: Any) -> dict[str, Outcome]:
    content = kw.get("content") or shipped()
    found = run_rules(facts(hook, **kw), RuleConfig.from_content(content), {})
    return {o.topic: o for o in found}


def run(topic: str, hook: str = "patient-view", **kw: Any) -> Outcome:
    return outcomes_of(hook, **kw)[topic]


def fire(topic: str, hook: str = "patient-view", **kw: Any) -> Finding:
    """The finding of a topic that must fire (fails with the rule's reason otherwise)."""
    outcome = run(topic, hook, **kw)
    assert outcome.finding is not None, f"{topic} did not fire on {hook}: {outcome.why}"
    return outcome.finding


def quiet(topic: str, hook: str = "patient-view", **kw: Any) -> str:
    """Asserts the topic does not fire; the rule's reason."""
    outcome = run(topic, hook, **kw)
    assert outcome.finding is None, f"{topic} fired on {hook}: {outcome.finding}"
    return outcome.why


def fired_now(hook: str = "patient-view", **kw: Any) -> dict[str, str]:
    """Topic -> indicator of every rule that fired."""
    return {t: o.finding.indicator for t, o in outcomes_of(hook, **kw).items() if o.finding}


def card_of(finding: Finding, content: Content | None = None) -> dict[str, Any]:
    """The finding rendered as the service would (shipped cards/ by default), checked for
    wording no card may use."""
    card = render_card(finding, content or shipped(), PATIENT_ID, offered=set())
    check_wording(card)
    return card


def card(topic: str, hook: str = "patient-view", **kw: Any) -> dict[str, Any]:
    """The rendered card of a topic that must fire."""
    return card_of(fire(topic, hook, **kw), kw.get("content"))


def text(rendered: Mapping[str, Any]) -> str:
    """Summary and detail of a rendered card, for phrase checks."""
    return f"{rendered['summary']}\n{rendered['detail']}"


def suggested_codes(rendered: Mapping[str, Any]) -> list[str]:
    """Every code a rendered card's suggestions order, in order."""
    codes: list[str] = []
    for suggestion in rendered.get("suggestions", ()):
        for action in suggestion["actions"]:
            resource = action["resource"]
            concept = resource.get("code") or resource.get("medicationCodeableConcept")
            codes += [c["code"] for c in concept["coding"]]
    return codes


def labels(rendered: Mapping[str, Any]) -> list[str]:
    return [s["label"] for s in rendered.get("suggestions", ())]


__all__ = [
    "HOOKS",
    "ICD10",
    "MORE_DRUGS",
    "ORDER_HOOKS",
    "SNOMED",
    "at_hours",
    "card",
    "card_of",
    "child_born",
    "condition",
    "facts",
    "fire",
    "fired_now",
    "labels",
    "med",
    "mg_hours_ago",
    "not_to_give",
    "order",
    "outcomes_of",
    "quiet",
    "renewing",
    "run",
    "serum_mg_order",
    "statement",
    "suggested_codes",
    "text",
    "value_string",
    "weight",
    "with_route",
]
