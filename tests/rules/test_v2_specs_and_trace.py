"""Every finding stays inside its topic spec (over every fixture scenario, on every hook), and
the evaluation trace explains the version-2 decisions."""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from cds_service.engine import Engine, Evaluation, trace
from cds_service.rules import ADVICE_SPEC, TOPICS, Finding
from cds_service.scenarios import load_scenario
from tests.facts.builders import (
    FIXED_NOW,
    PATIENT_ID,
    egfr,
    mg,
    model,
    models,
    patient,
    rx,
    shipped,
    tac_level,
)
from tests.support import make_service

from .kit import (
    ORDER_HOOKS,
    child_born,
    condition,
    med,
    not_to_give,
    order,
    renewing,
    weight,
)

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "fixtures" / "scenarios").glob("*.json"))
SERVICE_FOR_HOOK = {
    "patient-view": "mg-patient-view",
    "order-select": "mg-order-select",
    "order-sign": "mg-order-sign",
}
SPECS = {topic.spec.code: topic.spec for topic in TOPICS}


def _as_hook(request: dict[str, Any], hook: str) -> dict[str, Any]:
    """The scenario's patient and orders, sent on another hook."""
    changed = copy.deepcopy(request)
    changed["hook"] = hook
    context = changed["context"]
    if hook == "patient-view":
        context.pop("draftOrders", None)
        context.pop("selections", None)
        return changed
    drafts = context.setdefault(
        "draftOrders", {"resourceType": "Bundle", "type": "collection", "entry": []}
    )
    if hook == "order-select":
        context["selections"] = context.get("selections") or [
            f"{e['resource']['resourceType']}/{e['resource']['id']}"
            for e in drafts.get("entry", [])
            if isinstance(e.get("resource"), dict) and "id" in e["resource"]
        ]
    else:
        context.pop("selections", None)
    return changed


@functools.cache
def _findings_of(name: str, hook: str) -> tuple[str, tuple[Finding, ...]]:
    scenario = load_scenario(Path(SCENARIOS[0]).parent / f"{name}.json", shift=False)
    request = _as_hook(scenario.request, hook)
    service = make_service(clock=lambda: scenario.now)
    result = service.hook(SERVICE_FOR_HOOK[hook], request)
    findings = tuple(o.finding for o in result.evaluation.outcomes if o.finding is not None)
    return result.evaluation.facts.hook, findings


@pytest.mark.parametrize("hook", ["patient-view", "order-select", "order-sign"])
@pytest.mark.parametrize("name", [path.stem for path in SCENARIOS])
def test_every_finding_stays_inside_its_topic_spec(name: str, hook: str) -> None:
    evaluated_hook, findings = _findings_of(name, hook)
    assert evaluated_hook == hook
    formulary = shipped().formulary
    for finding in findings:
        spec = SPECS[finding.topic]
        where = f"{name} on {hook}: {finding.topic}"
        assert hook in spec.hooks, where
        assert finding.indicator in spec.indicators, where
        assert set(finding.notes) <= set(spec.notes), where
        assert set(finding.values) <= set(spec.values), where
        mechanism = finding.values.get("mechanism_key")
        if mechanism is not None:
            assert mechanism in spec.mechanisms, where
        for suggestion in finding.suggestions:
            table = formulary.lab_orders if suggestion.kind == "lab" else formulary.medications
            assert set(suggestion.keys) <= set(table), where
        plan = finding.advice
        if plan is not None:
            assert plan.action in ADVICE_SPEC.actions, where
            assert plan.caution is None or plan.caution in ADVICE_SPEC.cautions, where
            assert set(plan.lines) <= set(ADVICE_SPEC.lines), where
            assert set(plan.values) <= set(ADVICE_SPEC.values), where
            if plan.suggestion is not None:
                assert set(plan.suggestion.keys) <= set(formulary.medications), where


def test_the_scenarios_cover_every_topic_and_indicator() -> None:
    seen: set[tuple[str, str]] = set()
    for path in SCENARIOS:
        for hook in SERVICE_FOR_HOOK:
            seen |= {(f.topic, f.indicator) for f in _findings_of(path.stem, hook)[1]}
    expected = {(code, indicator) for code, spec in SPECS.items() for indicator in spec.indicators}
    assert seen == expected


# --- the trace --------------------------------------------------------------------------------


def _evaluate(
    hook: str = "patient-view",
    *,
    labs: Sequence[Mapping[str, Any]] = (),
    meds: Sequence[Mapping[str, Any]] = (),
    drafts: Sequence[Mapping[str, Any]] = (),
    conditions: Sequence[Mapping[str, Any]] = (),
    pat: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/example", "patientId": PATIENT_ID}
    if hook in ORDER_HOOKS:
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": dict(d)} for d in drafts],
        }
    if hook == "order-select":
        context["selections"] = [f"MedicationRequest/{d['id']}" for d in drafts]
    evaluation: Evaluation = Engine(shipped()).evaluate(
        hook=hook,
        context=context,
        resources={
            "patient": [model(pat or patient())],
            "observations": models(labs),
            "medicationRequests": models(meds),
            "medicationStatements": [],
            "conditions": models(conditions),
        },
        draft_orders=models(drafts),
        medications={},
        now=FIXED_NOW,
    )
    return trace(evaluation)


def _why(traced: Mapping[str, Any], topic: str) -> str:
    (rule,) = [r for r in traced["rules"] if r["topic"] == topic]
    return str(rule["why"])


def test_trace_explains_a_product_left_out_by_its_route() -> None:
    traced = _evaluate(labs=[mg(1.65)], meds=[med("tacrolimus_ointment", req_id="oint")])
    (ointment,) = traced["active_medications"]
    assert ointment["id"] == "oint"
    assert ointment["route"] == "non-systemic"
    assert ointment["excluded"] == "not systemic (Tacrolimus 0.1 % Topical Ointment)"
    assert ointment["classes"] == []
    assert "would count as tacrolimus" in ointment["matched_by"]
    assert traced["context"]["cni"] is None
    assert _why(traced, "hypomagnesemia") == (
        "current Mg 1.65 mg/dL is not below any tier (not on a CNI)"
    )


def test_trace_explains_an_order_not_to_give() -> None:
    traced = _evaluate(labs=[mg(1.65)], meds=[not_to_give(rx("tacrolimus", req_id="dnp"))])
    assert traced["active_medications"] == []
    assert traced["ignored_orders"] == [
        {
            "display": "Tacrolimus 1 MG Oral Capsule",
            "reason": "doNotPerform: an order not to give it",
            "id": "dnp",
        }
    ]
    assert traced["context"]["predicates"]["on_cni"] is False


def test_trace_names_the_source_of_kidney_failure() -> None:
    by_condition = _evaluate(
        labs=[mg(1.5), egfr(70)],
        conditions=[
            condition(
                "Z99.2",
                "http://hl7.org/fhir/sid/icd-10-cm",
                "Dependence on renal dialysis",
                cond_id="c1",
            )
        ],
    )
    context = by_condition["context"]
    assert context["kidney_failure_source"] == "Condition: Dependence on renal dialysis"
    assert context["conditions"] == [
        {
            "value_set": "kidney_failure",
            "code": "Z99.2",
            "display": "Dependence on renal dialysis",
            "id": "c1",
        }
    ]
    assert context["predicates"]["kidney_failure"] is True
    by_egfr = _evaluate(labs=[mg(1.5), egfr(12)])["context"]
    assert by_egfr["kidney_failure_source"] == "eGFR 12 mL/min/1.73 m2, reported eGFR"
    assert by_egfr["kidney_function"] == {
        "egfr": 12.0,
        "comparator": None,
        "source": "reported eGFR",
        "date": "2026-11-19",
    }


def test_trace_gives_the_age_and_the_weight_used() -> None:
    context = _evaluate(labs=[mg(1.0), weight(18)], pat=child_born(6))["context"]
    assert context["age_years"] == 6
    assert context["age_source"] == "Patient.birthDate at the time of the request"
    assert context["weight"] == {"value": "18 kg", "date": "2026-11-17"}
    assert context["predicates"]["child"] is True
    unknown = _evaluate(labs=[mg(1.0)], pat={"resourceType": "Patient", "id": PATIENT_ID})
    assert unknown["context"]["age_years"] is None
    assert unknown["context"]["age_source"] == "no birthDate: adult text"


def test_trace_explains_why_a_cni_start_is_new() -> None:
    traced = _evaluate("order-select", drafts=[order("tacrolimus", req_id="t")])
    cni = traced["context"]["cni"]
    assert cni["being_started"] is True
    assert cni["start"] == FIXED_NOW.isoformat()
    assert cni["evidence"] == [
        "tacrolimus ordered now with no earlier order and no level older than 14 days: a new start"
    ]
    assert "start evidence: tacrolimus ordered now" in _why(traced, "mg-monitoring-gap")


@pytest.mark.parametrize(
    ("kw", "evidence"),
    [
        (
            {"drafts": [renewing(order("tacrolimus"))]},
            ["the order being placed renews a prior prescription"],
        ),
        (
            {
                "meds": [rx("tacrolimus", status="completed", authored_days_ago=400)],
                "drafts": [order("tacrolimus")],
            },
            ["completed order (Tacrolimus 1 MG Oral Capsule)"],
        ),
        (
            {"labs": [tac_level(6.1, days_ago=20)], "drafts": [order("tacrolimus")]},
            ["tacrolimus level on 2026-10-31"],
        ),
    ],
    ids=["prior-prescription", "completed-order", "old-level"],
)
def test_trace_explains_why_a_cni_start_is_not_new(kw: dict[str, Any], evidence: list[str]) -> None:
    cni = _evaluate("order-select", **kw)["context"]["cni"]
    assert cni["being_started"] is False
    assert cni["evidence"] == evidence


def test_trace_explains_a_card_quiet_on_an_unrelated_order() -> None:
    traced = _evaluate("order-sign", labs=[mg(1.5)], drafts=[order("amlodipine")])
    assert traced["context"]["predicates"]["relevant_order"] is False
    assert traced["context"]["predicates"]["order_hook"] is True
    assert _why(traced, "hypomagnesemia") == (
        "Mg 1.5 mg/dL is low (warning) but no order being placed is about it"
    )
    relevant = _evaluate("order-sign", labs=[mg(1.5)], drafts=[order("kcl")])
    assert relevant["context"]["predicates"]["relevant_order"] is True
    assert [r["topic"] for r in relevant["rules"] if r["fired"]] == ["hypomagnesemia"]
