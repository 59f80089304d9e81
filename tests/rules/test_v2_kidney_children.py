"""4.4 kidney function and 4.5 children gate every magnesium dose, on every card that advises
magnesium: hypomagnesemia (oral and IV tiers), mg-digoxin, and the refractory K and Ca cards.

eGFR 15-29: a reduced oral dose, the IV cap, no Mg order. Kidney failure (eGFR < 15 or a
kidney-failure Condition): "dose with nephrology", the IV cap, no Mg order. A child (< 18 years at
the request): weight-based text with the mg range for a recent weight, no fixed-dose order.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.facts.builders import creatinine, egfr, ionized_ca, mg, patient, potassium, rx

from .kit import (
    ICD10,
    at_hours,
    card_of,
    child_born,
    condition,
    fire,
    suggested_codes,
    weight,
)

ORAL_CODE = "198741"

# (card, route of the advice, the labs and meds that make it fire with a low Mg)
CARDS: list[tuple[str, str, list[Any], list[Any]]] = [
    ("hypomagnesemia", "oral", [mg(1.5)], []),
    ("hypomagnesemia", "iv", [mg(1.0)], []),
    ("mg-digoxin", "oral", [mg(0.75, "mmol/L")], ["digoxin"]),
    ("mg-refractory-hypokalemia", "oral", [potassium(3.2), mg(1.24, "mEq/L")], []),
    ("mg-refractory-hypokalemia", "iv", [potassium(2.8), mg(0.45, "mmol/L")], []),
    ("mg-refractory-hypocalcemia", "oral", [ionized_ca(1.05), mg(1.5)], []),
    ("mg-refractory-hypocalcemia", "iv", [ionized_ca(1.05), mg(1.0)], []),
]
IDS = [f"{topic}-{route}" for topic, route, _, _ in CARDS]
# Cards whose summary quotes the magnesium action; the K/Ca cards quote a short caution.
QUOTES_ACTION = ("hypomagnesemia", "mg-digoxin")

REDUCED_ORAL = (
    "eGFR below 30: oral magnesium at a reduced dose, with Mg checked within a week "
    "(risk of hypermagnesemia) (003)."
)
IV_CAP = (
    "eGFR below 30: cap IV magnesium at 20 g per 48 h (magnesium sulfate injection label; 003) "
    "and recheck before repeating."
)
FAILURE_CAP = (
    "If IV magnesium is given, cap at 20 g per 48 h (magnesium sulfate injection label; 003) "
    "and recheck before repeating."
)


def _fire(topic: str, labs: list[Any], drugs: list[str], **kw: Any) -> Any:
    extra_labs = kw.pop("extra_labs", [])
    return fire(topic, labs=[*labs, *extra_labs], meds=[rx(d) for d in drugs], **kw)


# --- eGFR 15-29 -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [15, 22, 29.9])
@pytest.mark.parametrize(("topic", "route", "labs", "drugs"), CARDS, ids=IDS)
def test_egfr_15_to_29_reduced_dose_iv_cap_no_order(
    topic: str, route: str, labs: list[Any], drugs: list[str], value: float
) -> None:
    finding = _fire(topic, labs, drugs, extra_labs=[egfr(value)])
    assert finding.advice is not None
    assert finding.advice.action == ("oral_reduced" if route == "oral" else "iv_capped")
    assert finding.advice.suggestion is None
    rendered = card_of(finding)
    assert ORAL_CODE not in suggested_codes(rendered)
    assert IV_CAP in rendered["detail"]
    if route == "oral":
        assert REDUCED_ORAL in rendered["detail"]
        assert "Magnesium Oxide 400 MG Oral Tablet: 1 tablet" not in rendered["detail"]
    if topic in QUOTES_ACTION:
        expected = (
            "oral Mg at a reduced dose, recheck within a week"
            if route == "oral"
            else "give IV magnesium sulfate, max 20 g per 48 h"
        )
        assert rendered["summary"].endswith(expected)
    else:
        assert rendered["summary"].endswith("(eGFR below 30: reduced dose)")


@pytest.mark.parametrize(("topic", "route", "labs", "drugs"), CARDS, ids=IDS)
def test_egfr_30_is_the_usual_dose(
    topic: str, route: str, labs: list[Any], drugs: list[str]
) -> None:
    finding = _fire(topic, labs, drugs, extra_labs=[egfr(30)])
    assert finding.advice is not None
    assert finding.advice.action == ("oral_start" if route == "oral" else "iv_give")
    assert finding.advice.suggestion is not None
    if route == "oral":
        assert suggested_codes(card_of(finding))[-1:] == [ORAL_CODE]


def test_egfr_from_a_newer_creatinine_gates_the_dose() -> None:
    # A reported eGFR of 60 five months ago; yesterday's creatinine gives 25 (female, 80 y).
    finding = fire(
        "hypomagnesemia",
        labs=[mg(1.5), egfr(60, days_ago=150), creatinine(2.0)],
        pat=patient("1946-02-01", "female"),
    )
    assert finding.advice is not None
    assert finding.advice.action == "oral_reduced"
    assert (
        "eGFR 25 mL/min/1.73 m2, CKD-EPI 2021 from creatinine 2.0 mg/dL on 2026-11-19"
        in (card_of(finding)["detail"])
    )


def test_an_egfr_above_a_comparator_is_never_low() -> None:
    finding = fire("hypomagnesemia", labs=[mg(1.5), egfr(60, comparator=">")])
    assert finding.advice is not None
    assert finding.advice.action == "oral_start"


# --- kidney failure ----------------------------------------------------------------------------

FAILURE_CONDITIONS = [
    condition("46177005", display="End-stage renal disease"),
    condition("433146000", display="Chronic kidney disease stage 5"),
    condition("105502003", display="Dependence on renal dialysis"),
    condition("N18.6", ICD10, "End stage renal disease"),
    condition("Z99.2", ICD10, "Dependence on renal dialysis"),
    condition("46177005", display="End-stage renal disease", clinical=None, verification=None),
    condition("46177005", display="End-stage renal disease", clinical="recurrence"),
]


@pytest.mark.parametrize(("topic", "route", "labs", "drugs"), CARDS, ids=IDS)
def test_egfr_below_15_is_kidney_failure(
    topic: str, route: str, labs: list[Any], drugs: list[str]
) -> None:
    finding = _fire(topic, labs, drugs, extra_labs=[egfr(14)])
    assert finding.advice is not None
    # No repletion dose; a critical Mg is still treated now, dosed with nephrology.
    assert finding.advice.action == ("kidney_failure" if route == "oral" else "kidney_failure_iv")
    assert finding.advice.suggestion is None
    rendered = card_of(finding)
    assert (
        "Mg accumulates in kidney failure (eGFR 14 mL/min/1.73 m2, reported eGFR): no repletion "
        "dose here; dose with nephrology"
    ) in rendered["detail"]
    assert FAILURE_CAP in rendered["detail"]
    assert ORAL_CODE not in suggested_codes(rendered)
    assert "1-2 g IV over 15 minutes" not in rendered["detail"]
    if topic in QUOTES_ACTION:
        assert rendered["summary"].endswith(
            "Mg accumulates in kidney failure: dose with nephrology"
            if route == "oral"
            else "treat now, dosing with nephrology (Mg accumulates in kidney failure)"
        )
    else:
        assert rendered["summary"].endswith("(kidney failure: dose with nephrology)")


@pytest.mark.parametrize(
    "found", FAILURE_CONDITIONS, ids=lambda c: str(c["code"]["coding"][0]["code"])
)
@pytest.mark.parametrize(("topic", "route", "labs", "drugs"), CARDS, ids=IDS)
def test_a_kidney_failure_condition_is_kidney_failure_whatever_the_egfr(
    topic: str, route: str, labs: list[Any], drugs: list[str], found: dict[str, Any]
) -> None:
    finding = _fire(topic, labs, drugs, extra_labs=[egfr(70)], conditions=[found])
    assert finding.advice is not None
    assert finding.advice.action == ("kidney_failure" if route == "oral" else "kidney_failure_iv")
    assert finding.advice.suggestion is None
    display = found["code"]["coding"][0]["display"]
    assert f"Mg accumulates in kidney failure (Condition: {display})" in card_of(finding)["detail"]


@pytest.mark.parametrize(
    "found",
    [
        condition(clinical="resolved"),
        condition(clinical="inactive"),
        condition(clinical="remission"),
        condition(verification="entered-in-error"),
        condition(verification="refuted"),
        condition(clinical=None, abated_days_ago=30),
        condition("I10", ICD10, "Essential hypertension"),
    ],
    ids=["resolved", "inactive", "remission", "entered-in-error", "refuted", "abated", "other"],
)
def test_conditions_that_are_not_kidney_failure_now(found: dict[str, Any]) -> None:
    finding = fire("hypomagnesemia", labs=[mg(1.5), egfr(70)], conditions=[found])
    assert finding.advice is not None
    assert finding.advice.action == "oral_start"


def test_no_condition_data_is_not_kidney_failure() -> None:
    finding = fire("hypomagnesemia", labs=[mg(1.5)])
    assert finding.advice is not None
    assert finding.advice.action == "oral_start"


# --- children ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("topic", "route", "labs", "drugs"), CARDS, ids=IDS)
def test_a_child_gets_weight_based_text_and_no_fixed_dose_order(
    topic: str, route: str, labs: list[Any], drugs: list[str]
) -> None:
    finding = _fire(topic, labs, drugs, extra_labs=[weight(18)], pat=child_born(6))
    assert finding.advice is not None
    assert finding.advice.suggestion is None
    rendered = card_of(finding)
    assert ORAL_CODE not in suggested_codes(rendered)
    assert "1-2 g IV over 15 minutes" not in rendered["detail"]
    assert "12 mmol Mg" not in rendered["detail"]
    if route == "iv":
        assert finding.advice.action == "iv_child"
        assert (
            "Magnesium sulfate 25-50 mg/kg (max 2 g) IV (J Pediatr Health Care 2021): 450-900 mg "
            "for the latest weight (18 kg on 2026-11-17)."
        ) in rendered["detail"]
    else:
        assert finding.advice.action == "oral_child"
        assert (
            "Oral magnesium: dose by weight with the paediatric team (J Pediatr Health Care 2021)."
        ) in rendered["detail"]
    if topic not in QUOTES_ACTION:
        assert rendered["summary"].endswith("(child: dose by weight)")


@pytest.mark.parametrize(
    ("found", "shown"),
    [
        (
            weight(18, effective=at_hours(30 * 24)),
            "450-900 mg for the latest weight (18 kg on 2026-10-21)",
        ),
        (
            weight(66, "[lb_av]", unit_text="lb"),
            "748-1497 mg for the latest weight (66 lb on 2026-11-17)",  # 29.9 kg
        ),
        (weight(50), "1250-2000 mg for the latest weight (50 kg on 2026-11-17)"),  # max 2 g
        (
            weight(18, effective=at_hours(30 * 24 + 1)),
            "no body weight in the last 30 days: weigh the child first",
        ),
    ],
    ids=["kg-exactly-30-days", "lb", "capped-at-2-g", "weight-over-30-days"],
)
def test_child_iv_range_for_the_latest_weight(found: dict[str, Any], shown: str) -> None:
    finding = fire("hypomagnesemia", labs=[mg(1.0), found], pat=child_born(12))
    assert shown in card_of(finding)["detail"]


def test_child_without_a_weight_is_asked_to_be_weighed() -> None:
    detail = card_of(fire("hypomagnesemia", labs=[mg(1.0)], pat=child_born(12)))["detail"]
    assert (
        "Magnesium sulfate 25-50 mg/kg (max 2 g) IV (J Pediatr Health Care 2021); no body weight "
        "in the last 30 days: weigh the child first."
    ) in detail


@pytest.mark.parametrize(
    ("pat", "child"),
    [
        (child_born(17, days_more=364), True),  # 18 tomorrow
        (child_born(18), False),  # 18 today
        (patient(None, "female"), False),  # no birthDate: adult text
    ],
    ids=["17-years-364-days", "18-today", "no-birth-date"],
)
def test_the_adult_line_is_18_at_the_request(pat: dict[str, Any], child: bool) -> None:
    finding = fire("hypomagnesemia", labs=[mg(1.0), weight(60)], pat=pat)
    assert finding.advice is not None
    assert finding.advice.action == ("iv_child" if child else "iv_give")


def test_child_with_egfr_below_30_keeps_the_iv_cap() -> None:
    finding = fire("hypomagnesemia", labs=[mg(1.0), egfr(25), weight(18)], pat=child_born(6))
    assert finding.advice is not None
    assert finding.advice.lines == ("iv_child", "iv_cap")
    assert IV_CAP in card_of(finding)["detail"]


def test_kidney_failure_wins_over_age() -> None:
    finding = fire(
        "hypomagnesemia", labs=[mg(1.0), weight(18)], pat=child_born(6), conditions=[condition()]
    )
    assert finding.advice is not None
    assert finding.advice.action == "kidney_failure_iv"
