"""Small FHIR R4 builders and a rule runner shared by the facts, rules and content tests.

Everything is evaluated at ``FIXED_NOW``; dates are given as "days ago" so the tests never depend
on today's date. The builders produce realistic resources (LOINC codes, UCUM units with system
http://unitsofmeasure.org, RxNorm codes) so the tests exercise the same paths as real traffic.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cds_service.content import Content
from cds_service.facts import Facts, build_facts
from cds_service.profile import load_site_content
from cds_service.protocol import Resource, as_resource
from cds_service.rules import Finding, Outcome, RuleConfig, run_rules

REPO = Path(__file__).resolve().parents[2]
CARDS = REPO / "cards"
FIXED_NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

# LOINC codes by short name (defaults of cards/valuesets.yaml).
MG = "19123-9"  # magnesium, mass, serum/plasma
MG_MOLAR = "2601-3"  # magnesium, moles, serum/plasma
MG_BLOOD = "21377-7"
MG_BLOOD_MOLAR = "2593-2"
K = "2823-3"
K_BLOOD = "6298-4"
CA = "17861-6"
CA_BLOOD = "49765-1"
ICA = "1994-3"
ALBUMIN = "1751-7"
CREATININE = "2160-0"
CREATININE_MOLAR = "14682-9"
EGFR = "98979-8"
TAC_LEVEL = "11253-2"
CSA_LEVEL = "3520-4"
ALBUMIN_BCG = "61151-7"  # bromocresol green
ALBUMIN_BCP = "61152-5"  # bromocresol purple
ALBUMIN_ELECTROPHORESIS = "2862-1"  # not in the albumin value set
BODY_WEIGHT = "29463-7"

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"

# SNOMED CT route codes (dosage route), with the display EHRs send.
ROUTES: dict[str, tuple[str, str]] = {
    "oral": ("26643006", "Oral route"),
    "intravenous": ("47625008", "Intravenous route"),
    "intramuscular": ("78421000", "Intramuscular route"),
    "subcutaneous": ("34206005", "Subcutaneous route"),
    "topical": ("6064005", "Topical route"),
    "cutaneous": ("448598008", "Cutaneous route"),
    "ophthalmic": ("54485002", "Ophthalmic route"),
    "otic": ("10547007", "Otic route"),
    "nasal": ("46713006", "Nasal route"),
    "vaginal": ("16857009", "Vaginal route"),
    "inhalation": ("447694001", "Respiratory tract route"),
}

PATIENT_ID = "pat-1"

# (RxNorm code, display) of the drugs the tests prescribe; mostly sandbox product codes.
DRUGS: dict[str, tuple[str, str]] = {
    "tacrolimus": ("198377", "Tacrolimus 1 MG Oral Capsule"),
    "cyclosporine": ("197553", "Cyclosporine 25 MG Oral Capsule"),
    "mycophenolate": ("199058", "mycophenolate mofetil 250 MG Oral Capsule"),
    "antacid": ("237872", "Aluminum Hydroxide 200 MG / Magnesium Hydroxide 200 MG Chewable Tablet"),
    "mg_oxide": ("198741", "Magnesium Oxide 400 MG Oral Tablet"),
    "mg_sulfate": ("6585", "magnesium sulfate"),
    "kcl": ("198116", "Potassium Chloride 20 MEQ Extended Release Oral Tablet"),
    "ca_carbonate": ("198527", "Calcium Carbonate 250 MG Oral Tablet"),
    "omeprazole": ("198051", "Omeprazole 20 MG Delayed Release Oral Capsule"),
    "furosemide": ("200801", "Furosemide 20 MG Oral Tablet"),
    "hctz": ("5487", "hydrochlorothiazide"),
    "gentamicin": ("1596450", "gentamicin"),
    "sirolimus": ("35302", "sirolimus"),
    "digoxin": ("197604", "Digoxin 0.125 MG Oral Tablet"),
    "levothyroxine": ("10582", "levothyroxine"),
    "amlodipine": ("17767", "amlodipine"),  # in no class: a "nothing relevant" control
}

_ids = itertools.count(1)


@functools.cache
def shipped() -> Content:
    """The shipped cards/, loaded once."""
    return load_site_content(CARDS)


def with_settings(content: Content | None = None, **updates: Any) -> Content:
    """A copy of the content with top-level settings changed (thresholds/windows: pass models)."""
    base = content or shipped()
    return dataclasses.replace(base, settings=base.settings.model_copy(update=updates))


def with_windows(content: Content | None = None, **updates: Any) -> Content:
    base = content or shipped()
    return with_settings(base, windows=base.settings.windows.model_copy(update=updates))


def at(days_ago: float, *, hour: int = 8) -> str:
    """An ISO dateTime with Z, ``days_ago`` days before FIXED_NOW (day precision), at ``hour``."""
    day = (FIXED_NOW - timedelta(days=days_ago)).date()
    return f"{day.isoformat()}T{hour:02d}:00:00Z"


def date_of(days_ago: float) -> str:
    return (FIXED_NOW - timedelta(days=days_ago)).date().isoformat()


# ---------------------------------------------------------------------------------------------
# Observations


def observation(
    code: str,
    value: float | None,
    unit: str,
    days_ago: float = 1,
    *,
    status: str = "final",
    comparator: str | None = None,
    obs_id: str | None = None,
    system: str | None = UCUM,
    unit_text: str | None = None,
    effective: str | None = None,
    code_system: str = LOINC,
    data_absent: bool = False,
) -> dict[str, Any]:
    """A lab Observation.

    ``system=UCUM`` puts ``unit`` in ``valueQuantity.code`` (and ``unit_text`` or ``unit`` in
    ``valueQuantity.unit``); ``system=None`` gives only the unit text; any other system gives a
    local code ``LOCAL-UNIT`` with the unit text.
    """
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": obs_id or f"obs-{next(_ids)}",
        "status": status,
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": code_system, "code": code}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": effective or at(days_ago),
    }
    if data_absent:
        resource["dataAbsentReason"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                    "code": "error",
                }
            ]
        }
        return resource
    quantity: dict[str, Any] = {}
    if value is not None:
        quantity["value"] = value
    if comparator is not None:
        quantity["comparator"] = comparator
    if system == UCUM:
        quantity.update(unit=unit_text or unit, system=UCUM, code=unit)
    elif system is None:
        quantity["unit"] = unit
    else:
        quantity.update(unit=unit_text or unit, system=system, code="LOCAL-UNIT")
    resource["valueQuantity"] = quantity
    return resource


def mg(value: float, unit: str = "mg/dL", days_ago: float = 1, **kw: Any) -> dict[str, Any]:
    code = kw.pop("code", MG if unit.lower() in ("mg/dl", "mg/l") else MG_MOLAR)
    return observation(code, value, unit, days_ago, **kw)


def potassium(value: float, unit: str = "mmol/L", days_ago: float = 1, **kw: Any) -> dict[str, Any]:
    return observation(kw.pop("code", K), value, unit, days_ago, **kw)


def calcium(value: float, unit: str = "mg/dL", days_ago: float = 1, **kw: Any) -> dict[str, Any]:
    return observation(kw.pop("code", CA), value, unit, days_ago, **kw)


def ionized_ca(
    value: float, unit: str = "mmol/L", days_ago: float = 1, **kw: Any
) -> dict[str, Any]:
    return observation(kw.pop("code", ICA), value, unit, days_ago, **kw)


def albumin(value: float, unit: str = "g/dL", days_ago: float = 1, **kw: Any) -> dict[str, Any]:
    return observation(ALBUMIN, value, unit, days_ago, **kw)


def creatinine(value: float, unit: str = "mg/dL", days_ago: float = 1, **kw: Any) -> dict[str, Any]:
    code = kw.pop("code", CREATININE if unit == "mg/dL" else CREATININE_MOLAR)
    return observation(code, value, unit, days_ago, **kw)


def egfr(
    value: float, days_ago: float = 1, *, unit: str = "mL/min/{1.73_m2}", **kw: Any
) -> dict[str, Any]:
    return observation(kw.pop("code", EGFR), value, unit, days_ago, **kw)


def tac_level(value: float, days_ago: float = 1, **kw: Any) -> dict[str, Any]:
    return observation(TAC_LEVEL, value, "ng/mL", days_ago, **kw)


def csa_level(value: float, days_ago: float = 1, **kw: Any) -> dict[str, Any]:
    return observation(CSA_LEVEL, value, "ng/mL", days_ago, **kw)


def body_weight(value: float, unit: str = "kg", days_ago: float = 1, **kw: Any) -> dict[str, Any]:
    """A body weight (LOINC 29463-7); UCUM units kg, g, [lb_av]."""
    return observation(BODY_WEIGHT, value, unit, days_ago, **kw)


def value_string(code: str, text: str, days_ago: float = 1, **kw: Any) -> dict[str, Any]:
    """A result sent as text in ``valueString`` ("<0.5 mmol/L"), as some lab interfaces do."""
    resource = observation(code, None, "", days_ago, **kw)
    del resource["valueQuantity"]
    resource["valueString"] = text
    return resource


def condition(
    code: str,
    display: str,
    *,
    system: str = SNOMED,
    clinical_status: str | None = "active",
    verification_status: str | None = "confirmed",
    abatement: str | None = None,
    cond_id: str | None = None,
) -> dict[str, Any]:
    """A Condition (problem-list item) with the status codings EHRs send."""
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cond_id or f"cond-{next(_ids)}",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "problem-list-item",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
    }
    if clinical_status is not None:
        resource["clinicalStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": clinical_status,
                }
            ]
        }
    if verification_status is not None:
        resource["verificationStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": verification_status,
                }
            ]
        }
    if abatement is not None:
        resource["abatementDateTime"] = abatement
    return resource


def lab_order(
    code: str = MG,
    *,
    status: str = "draft",
    req_id: str | None = None,
    code_system: str = LOINC,
    do_not_perform: bool | None = None,
) -> dict[str, Any]:
    """A draft lab ServiceRequest, as found in context.draftOrders."""
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": req_id or f"lab-{next(_ids)}",
        "status": status,
        "intent": "order",
        "code": {"coding": [{"system": code_system, "code": code}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
    }
    if do_not_perform is not None:
        resource["doNotPerform"] = do_not_perform
    return resource


def patient(birth_date: str | None = "1966-05-04", gender: str | None = "female") -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Patient", "id": PATIENT_ID}
    if birth_date is not None:
        resource["birthDate"] = birth_date
    if gender is not None:
        resource["gender"] = gender
    return resource


# ---------------------------------------------------------------------------------------------
# Medications


def med_request(
    code: str | None = None,
    display: str | None = None,
    *,
    status: str = "active",
    req_id: str | None = None,
    authored_days_ago: float | None = 200,
    text: str | None = None,
    intent: str | None = "order",
    code_system: str = RXNORM,
    medication_reference: str | None = None,
    contained: Sequence[Mapping[str, Any]] = (),
    resource_type: str = "MedicationRequest",
) -> dict[str, Any]:
    """A MedicationRequest (or MedicationStatement) with a coded drug, a text, or a reference."""
    resource: dict[str, Any] = {
        "resourceType": resource_type,
        "id": req_id or f"med-{next(_ids)}",
        "status": status,
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
    }
    if intent is not None and resource_type == "MedicationRequest":
        resource["intent"] = intent
    if authored_days_ago is not None:
        key = "authoredOn" if resource_type == "MedicationRequest" else "effectiveDateTime"
        resource[key] = date_of(authored_days_ago)
    if code is not None or text is not None:
        concept: dict[str, Any] = {}
        if code is not None:
            coding: dict[str, Any] = {"system": code_system, "code": code}
            if display is not None:
                coding["display"] = display
            concept["coding"] = [coding]
        if text is not None:
            concept["text"] = text
        resource["medicationCodeableConcept"] = concept
    if medication_reference is not None:
        resource["medicationReference"] = {"reference": medication_reference}
    if contained:
        resource["contained"] = [dict(item) for item in contained]
    return resource


def rx(drug: str, **kw: Any) -> dict[str, Any]:
    """A MedicationRequest for one of ``DRUGS`` by its RxNorm code and display."""
    code, display = DRUGS[drug]
    kw.setdefault("req_id", f"{drug}-{next(_ids)}")
    return med_request(code, display, **kw)


def draft(drug: str, **kw: Any) -> dict[str, Any]:
    """A draft order (as found in context.draftOrders)."""
    kw.setdefault("status", "draft")
    kw.setdefault("authored_days_ago", 0)
    return rx(drug, **kw)


def route(name: str, *, coded: bool = True) -> dict[str, Any]:
    """A dosage route CodeableConcept: SNOMED coded (with its display), or text only."""
    code, display = ROUTES[name]
    if not coded:
        return {"text": display}
    return {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display}


def with_route(resource: dict[str, Any], name: str, *, coded: bool = True) -> dict[str, Any]:
    """The resource with a dosage route: ``dosageInstruction[]`` on a MedicationRequest,
    ``dosage[]`` on a MedicationStatement."""
    key = "dosage" if resource["resourceType"] == "MedicationStatement" else "dosageInstruction"
    resource[key] = [{"text": "as directed", "route": route(name, coded=coded)}]
    return resource


def statement(
    code: str | None = None,
    display: str | None = None,
    *,
    started_days_ago: float | None = 200,
    status: str = "active",
    text: str | None = None,
    route_name: str | None = None,
    stmt_id: str | None = None,
    medication_reference: str | None = None,
    contained: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A MedicationStatement as EHRs report home medications: ``effectivePeriod.start`` and
    ``dosage[].route``."""
    resource = med_request(
        code,
        display,
        status=status,
        req_id=stmt_id or f"stmt-{next(_ids)}",
        authored_days_ago=None,
        text=text,
        medication_reference=medication_reference,
        contained=contained,
        resource_type="MedicationStatement",
    )
    if started_days_ago is not None:
        resource["effectivePeriod"] = {"start": at(started_days_ago)}
    if route_name is not None:
        with_route(resource, route_name)
    return resource


def medication(
    med_id: str,
    *,
    code: str | None = None,
    text: str | None = None,
    ingredients: Iterable[tuple[str | None, str]] = (),
    form: str | None = None,
) -> dict[str, Any]:
    """A Medication resource; ``ingredients`` are (RxNorm code or None, text) pairs; ``form``
    the dose form text ("Ophthalmic Emulsion")."""
    resource: dict[str, Any] = {"resourceType": "Medication", "id": med_id}
    if form is not None:
        resource["form"] = {"text": form}
    concept: dict[str, Any] = {}
    if code is not None:
        concept["coding"] = [{"system": RXNORM, "code": code}]
    if text is not None:
        concept["text"] = text
    if concept:
        resource["code"] = concept
    items = []
    for ing_code, ing_text in ingredients:
        item: dict[str, Any] = {"text": ing_text}
        if ing_code is not None:
            item["coding"] = [{"system": RXNORM, "code": ing_code, "display": ing_text}]
        items.append({"itemCodeableConcept": item, "isActive": True})
    if items:
        resource["ingredient"] = items
    return resource


# ---------------------------------------------------------------------------------------------
# Facts and rules


def model(resource: Mapping[str, Any]) -> Resource:
    """A built resource as the gathering layer hands it to the facts: a ``Resource`` model."""
    converted = as_resource(resource)
    assert converted is not None
    return converted


def models(resources: Iterable[Mapping[str, Any]]) -> list[Resource]:
    return [model(resource) for resource in resources]


def make_facts(
    hook: str = "patient-view",
    *,
    labs: Sequence[Mapping[str, Any]] = (),
    meds: Sequence[Mapping[str, Any]] = (),
    statements: Sequence[Mapping[str, Any]] = (),
    drafts: Sequence[Mapping[str, Any]] = (),
    selections: Sequence[str] | None = None,
    pat: Mapping[str, Any] | None = None,
    no_patient: bool = False,
    medications: Mapping[str, Mapping[str, Any]] | None = None,
    content: Content | None = None,
    now: datetime = FIXED_NOW,
    conditions: Sequence[Mapping[str, Any]] | None = None,
) -> Facts:
    """Facts for a hook call. In order-select, ``selections`` defaults to every draft.

    ``conditions`` fills the targeted Condition prefetch; None leaves the key out (unknown).
    """
    context: dict[str, Any] = {"userId": "Practitioner/example", "patientId": PATIENT_ID}
    if hook in ("order-select", "order-sign"):
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
    }
    if conditions is not None:
        resources["conditions"] = models(conditions)
    return build_facts(
        hook=hook,
        context=context,
        resources=resources,
        draft_orders=models(drafts),
        medications={key: model(value) for key, value in (medications or {}).items()},
        content=content or shipped(),
        now=now,
    )


def outcomes(facts: Facts, content: Content | None = None) -> dict[str, Outcome]:
    """Every rule's outcome by topic (all topics enabled)."""
    config = RuleConfig.from_content(content or shipped())
    return {o.topic: o for o in run_rules(facts, config, {})}


def evaluate(topic: str, hook: str = "patient-view", **kw: Any) -> Outcome:
    """The outcome of one topic for a hook call built from ``make_facts`` arguments."""
    content = kw.get("content")
    return outcomes(make_facts(hook, **kw), content)[topic]


def fired(topic: str, hook: str = "patient-view", **kw: Any) -> Finding:
    """The finding of a topic that must fire (fails with the rule's reason otherwise)."""
    outcome = evaluate(topic, hook, **kw)
    assert outcome.finding is not None, f"{topic} did not fire on {hook}: {outcome.why}"
    assert outcome.finding.topic == topic
    return outcome.finding


def silent(topic: str, hook: str = "patient-view", **kw: Any) -> str:
    """Asserts the topic does not fire; returns the rule's reason for the trace."""
    outcome = evaluate(topic, hook, **kw)
    assert outcome.finding is None, f"{topic} fired on {hook}: {outcome.finding}"
    return outcome.why


def fired_topics(hook: str = "patient-view", **kw: Any) -> dict[str, str]:
    """Topic -> indicator of every rule that fired."""
    content = kw.get("content")
    return {
        topic: o.finding.indicator
        for topic, o in outcomes(make_facts(hook, **kw), content).items()
        if o.finding is not None
    }
