"""Derived facts: CKD-EPI 2021 eGFR and Payne-corrected calcium."""

from __future__ import annotations

import math

import pytest

from cds_service.content import Threshold
from cds_service.facts import ckd_epi_2021
from cds_service.rules import Finding

from .builders import (
    EGFR,
    albumin,
    calcium,
    creatinine,
    egfr,
    evaluate,
    fired,
    ionized_ca,
    make_facts,
    mg,
    observation,
    patient,
    shipped,
    silent,
    with_settings,
)


def published_ckd_epi_2021(scr: float, age: int, female: bool) -> float:
    """The 2021 race-free equation (Inker et al., NEJM 2021) written out piecewise."""
    if female:
        exponent = -0.241 if scr <= 0.7 else -1.200
        return float(142 * (scr / 0.7) ** exponent * 0.9938**age * 1.012)
    exponent = -0.302 if scr <= 0.9 else -1.200
    return float(142 * (scr / 0.9) ** exponent * 0.9938**age)


# Born 1976-01-15: 50 years old on 2026-11-19 (the creatinine's day).
BORN_1976 = "1976-01-15"


@pytest.mark.parametrize(
    ("scr", "age", "female"),
    [
        (1.0, 50, True),
        (1.0, 50, False),
        (0.5, 30, True),
        (0.7, 40, True),
        (0.9, 40, False),
        (0.6, 65, False),
        (2.5, 70, False),
        (4.0, 80, True),
    ],
)
def test_ckd_epi_2021_matches_the_published_equation(scr: float, age: int, female: bool) -> None:
    assert ckd_epi_2021(scr, age, female) == pytest.approx(
        published_ckd_epi_2021(scr, age, female), rel=1e-12
    )


def test_ckd_epi_2021_reference_values() -> None:
    # Published calculators: female 50 y, Scr 1.0 mg/dL -> 68.6; male 50 y -> 91.7.
    assert ckd_epi_2021(1.0, 50, True) == pytest.approx(68.6, abs=0.05)
    assert ckd_epi_2021(1.0, 50, False) == pytest.approx(91.7, abs=0.05)
    assert math.isclose(ckd_epi_2021(0.7, 0, True), 142 * 1.012)


@pytest.mark.parametrize(
    ("gender", "expected", "shown"),
    [("female", 68.63, "69 mL/min/1.73 m2"), ("male", 91.69, "92 mL/min/1.73 m2")],
)
def test_computed_egfr_from_creatinine(gender: str, expected: float, shown: str) -> None:
    facts = make_facts(labs=[creatinine(1.0)], pat=patient(BORN_1976, gender))
    assert facts.kidney is not None
    assert facts.kidney.egfr == pytest.approx(expected, abs=0.01)
    assert facts.kidney.shown == shown
    assert facts.kidney.source == "CKD-EPI 2021 from creatinine 1.0 mg/dL on 2026-11-19"
    assert facts.kidney.derived is True


@pytest.mark.parametrize("unit", ["umol/L", "µmol/L"])
def test_creatinine_in_micromol(unit: str) -> None:
    facts = make_facts(labs=[creatinine(88.42, unit)], pat=patient(BORN_1976, "female"))
    assert facts.kidney is not None
    assert facts.kidney.egfr == pytest.approx(published_ckd_epi_2021(1.0, 50, True), rel=1e-9)
    assert "88.42" in facts.kidney.source


def test_age_is_taken_on_the_creatinine_day() -> None:
    # Born 1976-11-19: 50 on 2026-11-19, 49 the day before.
    on_birthday = make_facts(labs=[creatinine(1.0, days_ago=1)], pat=patient("1976-11-19"))
    day_before = make_facts(labs=[creatinine(1.0, days_ago=2)], pat=patient("1976-11-19"))
    assert on_birthday.kidney is not None and day_before.kidney is not None
    assert on_birthday.kidney.egfr == pytest.approx(published_ckd_epi_2021(1.0, 50, True))
    assert day_before.kidney.egfr == pytest.approx(published_ckd_epi_2021(1.0, 49, True))


def test_a_newer_creatinine_wins_over_an_older_reported_egfr() -> None:
    # 4.4: kidney function is the most recent of the two (v1: a reported eGFR always won).
    # Female 50 y, Scr 3.0 mg/dL: CKD-EPI 2021 = 18.
    facts = make_facts(
        labs=[creatinine(3.0, days_ago=1), egfr(45, days_ago=5)], pat=patient(BORN_1976)
    )
    assert facts.kidney is not None
    assert facts.kidney.egfr == pytest.approx(published_ckd_epi_2021(3.0, 50, True))
    assert facts.kidney.source == "CKD-EPI 2021 from creatinine 3.0 mg/dL on 2026-11-19"
    assert facts.kidney.shown == "18 mL/min/1.73 m2"
    assert facts.egfr_below_cap is True


def test_reported_egfr_wins_over_an_older_creatinine() -> None:
    facts = make_facts(
        labs=[creatinine(3.0, days_ago=5), egfr(45, days_ago=1)], pat=patient(BORN_1976)
    )
    assert facts.kidney is not None
    assert facts.kidney.egfr == 45
    assert facts.kidney.source == "reported eGFR"
    assert facts.kidney.shown == "45 mL/min/1.73 m2"
    assert facts.egfr_below_cap is False


def test_latest_reported_egfr_is_used() -> None:
    facts = make_facts(labs=[egfr(25, days_ago=10), egfr(55, days_ago=2)])
    assert facts.kidney is not None
    assert facts.kidney.egfr == 55


@pytest.mark.parametrize(
    "pat",
    [patient(None, "female"), patient(BORN_1976, None), patient(BORN_1976, "unknown")],
    ids=["no-birthdate", "no-sex", "sex-unknown"],
)
def test_no_computed_egfr_without_birthdate_and_sex(pat: dict[str, object]) -> None:
    assert make_facts(labs=[creatinine(1.0)], pat=pat).kidney is None


def test_no_computed_egfr_without_patient() -> None:
    assert make_facts(labs=[creatinine(1.0)], no_patient=True).kidney is None


def test_no_computed_egfr_for_a_child_or_a_censored_creatinine() -> None:
    assert make_facts(labs=[creatinine(0.5)], pat=patient("2015-01-01")).kidney is None
    censored = creatinine(0.2, comparator="<")
    assert make_facts(labs=[censored], pat=patient(BORN_1976)).kidney is None


def test_egfr_in_every_listed_unit_spelling() -> None:
    for unit in ("mL/min/{1.73_m2}", "mL/min/1.73m2", "mL/min/1.73 m2", "mL/min"):
        facts = make_facts(labs=[observation(EGFR, 28, unit)])
        assert facts.kidney is not None and facts.kidney.egfr == 28, unit


# --- eGFR in the hypomagnesemia card --------------------------------------------------------


def test_low_computed_egfr_caps_iv_magnesium_and_shows_its_creatinine() -> None:
    # Male 70 y (born 1956-01-15), Scr 2.5 mg/dL: CKD-EPI 2021 = 27. 4.4: eGFR 15-29 caps IV
    # magnesium (20 g per 48 h) and suggests no IV order (v1: an "egfr_low" note and the order).
    finding = fired(
        "hypomagnesemia",
        labs=[mg(1.0), creatinine(2.5)],
        pat=patient("1956-01-15", "male"),
    )
    assert finding.indicator == "critical"
    assert finding.notes == ("kidney",)
    assert finding.values["egfr"] == "27 mL/min/1.73 m2"
    assert finding.values["egfr_source"] == "CKD-EPI 2021 from creatinine 2.5 mg/dL on 2026-11-19"
    assert finding.advice is not None
    assert (finding.advice.action, finding.advice.lines) == ("iv_capped", ("iv_adult", "iv_cap"))
    assert finding.advice.suggestion is None
    assert finding.advice.values["iv_cap"] == "20 g per 48 h"
    assert ("eGFR source: creatinine", "2.5 mg/dL", "2026-11-19") in [
        (r.label, r.value, r.day) for r in finding.rows
    ]


def _iv_action(finding: Finding) -> str:
    assert finding.advice is not None
    return finding.advice.action


@pytest.mark.parametrize(
    ("value", "action"),
    [
        (14, "kidney_failure_iv"),
        (14.9, "kidney_failure_iv"),
        (15, "iv_capped"),
        (29, "iv_capped"),
        (29.9, "iv_capped"),
        (30, "iv_give"),
        (31, "iv_give"),
    ],
)
def test_reported_egfr_cap_line(value: float, action: str) -> None:
    finding = fired("hypomagnesemia", labs=[mg(1.0), egfr(value)])
    assert _iv_action(finding) == action
    assert finding.values["egfr_source"] == "reported eGFR"
    # A reported eGFR is already in the data: no derived row.
    assert [r.label for r in finding.rows] == ["Magnesium"]


@pytest.mark.parametrize(
    ("comparator", "value", "action"),
    [
        ("<", 30, "iv_capped"),
        ("<", 15, "kidney_failure_iv"),  # "<15" is below 15
        ("<=", 15, "iv_capped"),  # at most 15: not below it
        ("<=", 30, "iv_give"),  # at most 30: not below it
        ("<", 31, "iv_give"),  # could be 30: not known to be below
        ("<=", 29, "iv_capped"),
    ],
)
def test_egfr_with_less_than_comparator(comparator: str, value: float, action: str) -> None:
    finding = fired("hypomagnesemia", labs=[mg(1.0), egfr(value, comparator=comparator)])
    assert _iv_action(finding) == action
    assert finding.values["egfr"] == f"{comparator}{value} mL/min/1.73 m2"


@pytest.mark.parametrize("value", [10, 20, 60])
def test_egfr_with_greater_than_comparator_is_not_low(value: float) -> None:
    finding = fired("hypomagnesemia", labs=[mg(1.0), egfr(value, comparator=">")])
    assert _iv_action(finding) == "iv_give"
    assert finding.values["egfr"] == f">{value} mL/min/1.73 m2"


def test_no_kidney_note_without_kidney_data() -> None:
    finding = fired("hypomagnesemia", labs=[mg(1.0)])
    assert "kidney" not in finding.notes
    assert (finding.values["egfr"], finding.values["egfr_source"]) == ("", "")
    assert _iv_action(finding) == "iv_give"


# --- corrected calcium (Payne) ---------------------------------------------------------------

LOW_MG = mg(0.60, "mmol/L")


def test_payne_correction_with_same_day_albumin() -> None:
    facts = make_facts(labs=[calcium(7.6), albumin(3.5)])
    corrected = facts.corrected_calcium
    assert corrected is not None and corrected.albumin is not None
    assert corrected.corrected_mg_per_dl == pytest.approx(7.6 + 0.8 * (4.0 - 3.5))
    assert corrected.corrected_mmol_per_l == pytest.approx(8.0 / 4.008)
    assert corrected.shown == "8 mg/dL (2 mmol/L)"


def test_corrected_calcium_card_values() -> None:
    finding = fired("mg-refractory-hypocalcemia", labs=[calcium(7.6), albumin(3.5), LOW_MG])
    assert finding.values["ca_label"] == "Corrected Ca"
    # The summary value stays in the unit family the Ca was reported in; the basis and the
    # table row give the mmol/L equivalent.
    assert finding.values["ca"] == "8 mg/dL"
    assert finding.values["ca_basis"] == (
        "Corrected calcium (Payne) 8 mg/dL (2 mmol/L) from total Ca 7.6 mg/dL and "
        "albumin 3.5 g/dL (2026-11-19)."
    )
    assert (finding.rows[-1].label, finding.rows[-1].value) == (
        "Corrected calcium (Payne)",
        "8 mg/dL (2 mmol/L)",
    )


def test_low_albumin_corrects_a_low_total_calcium_back_to_normal() -> None:
    # 7.6 + 0.8 * (4.0 - 2.5) = 8.8 mg/dL: not low.
    why = silent("mg-refractory-hypocalcemia", labs=[calcium(7.6), albumin(2.5), LOW_MG])
    assert "8.8 mg/dL" in why


@pytest.mark.parametrize(("albumin_days_ago", "paired"), [(1, True), (3, True), (4, False)])
def test_albumin_must_be_within_two_days(albumin_days_ago: int, paired: bool) -> None:
    # Ca drawn 1 day ago: albumin drawn 1 day ago (same day) or 3 days ago (2 days apart)
    # is paired; 4 days ago (3 days apart) is not.
    facts = make_facts(labs=[calcium(7.6, days_ago=1), albumin(2.5, days_ago=albumin_days_ago)])
    assert facts.corrected_calcium is not None
    assert (facts.corrected_calcium.albumin is not None) is paired
    outcome = evaluate(
        "mg-refractory-hypocalcemia",
        labs=[calcium(7.6, days_ago=1), albumin(2.5, days_ago=albumin_days_ago), LOW_MG],
    )
    # Paired: 8.8 mg/dL, not low. Unpaired: the uncorrected 7.6 mg/dL is low.
    assert outcome.fired is not paired
    if outcome.finding:
        assert outcome.finding.values["ca_label"] == "Ca"
        assert outcome.finding.values["ca"] == "7.6 mg/dL"
        assert "no albumin within 2 days" in str(outcome.finding.values["ca_basis"])


def test_albumin_drawn_after_the_calcium_pairs_too() -> None:
    facts = make_facts(labs=[calcium(7.6, days_ago=3), albumin(2.5, days_ago=1)])
    assert facts.corrected_calcium is not None and facts.corrected_calcium.albumin is not None


def test_closest_albumin_is_used() -> None:
    facts = make_facts(
        labs=[calcium(7.6, days_ago=2), albumin(2.0, days_ago=4), albumin(3.0, days_ago=2)]
    )
    assert facts.corrected_calcium is not None and facts.corrected_calcium.albumin is not None
    assert facts.corrected_calcium.albumin.value == 3.0


def test_albumin_in_g_per_l() -> None:
    facts = make_facts(labs=[calcium(7.6), albumin(25, "g/L")])
    assert facts.corrected_calcium is not None
    assert facts.corrected_calcium.corrected_mg_per_dl == pytest.approx(8.8)


@pytest.mark.parametrize(
    ("ca", "alb", "fires"),
    [
        (1.9, 3.8, True),  # 1.9 + 0.16/4.008 = 1.94 mmol/L
        (1.9, 2.5, False),  # 1.9 + 1.2/4.008 = 2.20 mmol/L
        (2.12, 4.0, False),
        (2.11, 4.0, True),
    ],
)
def test_molar_total_calcium_is_corrected_in_mmol(ca: float, alb: float, fires: bool) -> None:
    outcome = evaluate(
        "mg-refractory-hypocalcemia", labs=[calcium(ca, "mmol/L"), albumin(alb), LOW_MG]
    )
    assert outcome.fired is fires, outcome.why


@pytest.mark.parametrize(("ca", "alb"), [(7.7, 3.0), (9.62, 5.4), (8.1, 3.5), (9.3, 5.0)])
def test_corrected_calcium_exactly_at_8_5_is_not_low(ca: float, alb: float) -> None:
    # Each pair corrects to exactly 8.5 mg/dL; floating-point must not drag it below the line.
    why = silent("mg-refractory-hypocalcemia", labs=[calcium(ca), albumin(alb), LOW_MG])
    assert "8.5 mg/dL" in why


def test_ionized_calcium_wins_over_corrected_total() -> None:
    # Normal ionized Ca: no card although the total is low.
    why = silent(
        "mg-refractory-hypocalcemia",
        labs=[ionized_ca(1.20), calcium(7.0), albumin(4.0), LOW_MG],
    )
    assert "ionized Ca 1.2 mmol/L is not low" in why
    # Low ionized Ca: the card, although the total is normal.
    finding = fired(
        "mg-refractory-hypocalcemia", labs=[ionized_ca(1.05), calcium(9.5), albumin(4.0), LOW_MG]
    )
    assert finding.values["ca_label"] == "Ionized Ca"
    assert finding.values["ca"] == "1.05 mmol/L"


def test_stale_ionized_calcium_falls_back_to_corrected_total() -> None:
    finding = fired(
        "mg-refractory-hypocalcemia",
        labs=[ionized_ca(1.30, days_ago=40), calcium(7.6), albumin(3.5), LOW_MG],
    )
    assert finding.values["ca_label"] == "Corrected Ca"
    assert finding.values["ca"] == "8 mg/dL"


def test_no_corrected_calcium_without_a_current_total_calcium() -> None:
    facts = make_facts(labs=[calcium(7.0, days_ago=40), albumin(3.0, days_ago=40)])
    assert facts.corrected_calcium is None


def test_mass_calcium_falls_back_to_the_mmol_line_when_the_site_drops_the_mg_twin() -> None:
    thresholds = shipped().settings.thresholds.model_copy(
        update={"ca_total_low": Threshold(mmol_per_l=2.12)}
    )
    content = with_settings(thresholds=thresholds)
    # 7.0 mg/dL = 1.75 mmol/L: low against 2.12 mmol/L (never silently "not low").
    finding = fired("mg-refractory-hypocalcemia", labs=[calcium(7.0), LOW_MG], content=content)
    assert finding.values["ca"] == "7.0 mg/dL"
    silent("mg-refractory-hypocalcemia", labs=[calcium(8.6), LOW_MG], content=content)
