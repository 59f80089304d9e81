"""Kidney function (contract 4.4): the newest of a reported eGFR and the eGFR computed from a
creatinine, every eGFR unit spelling EHRs send, comparators, and kidney failure from an eGFR
below 15 or from an active kidney-failure Condition."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.facts import Facts, ckd_epi_2021

from .builders import (
    EGFR,
    ICD10CM,
    SNOMED,
    UCUM,
    condition,
    creatinine,
    egfr,
    make_facts,
    observation,
    patient,
    value_string,
)

# Female, 50 on the days these tests draw creatinine (born 1976-01-15).
BORN_1976 = "1976-01-15"


def kidney_facts(*labs: dict[str, Any], **kw: Any) -> Facts:
    kw.setdefault("pat", patient(BORN_1976, "female"))
    return make_facts(labs=list(labs), **kw)


def egfr_of(facts: Facts) -> float:
    assert facts.kidney is not None
    return facts.kidney.egfr


# --- newest of reported and creatinine-derived ----------------------------------------------


@pytest.mark.parametrize("unit", ["mg/dL", "umol/L", "µmol/L"])
def test_a_creatinine_newer_than_the_reported_egfr_wins(unit: str) -> None:
    # Scr 2.0 mg/dL = 176.84 umol/L; female 50 y: CKD-EPI 2021 = 29.9.
    value = 2.0 if unit == "mg/dL" else 176.84
    facts = kidney_facts(egfr(62, days_ago=20), creatinine(value, unit, days_ago=2))
    assert facts.kidney is not None
    assert facts.kidney.derived is True
    assert facts.kidney.egfr == pytest.approx(ckd_epi_2021(2.0, 50, True))
    # 29.9 is below the IV-cap line of 30: never printed as "30".
    assert facts.kidney.shown == "29.9 mL/min/1.73 m2"
    assert facts.kidney.source == f"CKD-EPI 2021 from creatinine {value} {unit} on 2026-11-18"
    assert facts.kidney.when.date().isoformat() == "2026-11-18"


def test_a_reported_egfr_newer_than_the_creatinine_wins() -> None:
    facts = kidney_facts(egfr(62, days_ago=2), creatinine(2.0, days_ago=20))
    assert facts.kidney is not None
    assert (facts.kidney.derived, facts.kidney.egfr, facts.kidney.source) == (
        False,
        62,
        "reported eGFR",
    )


def test_at_the_same_time_the_reported_egfr_wins() -> None:
    # The lab reports both from one draw: its own eGFR is the one to quote.
    same = "2026-11-18T07:30:00Z"
    facts = kidney_facts(egfr(25, effective=same), creatinine(1.0, effective=same))
    assert facts.kidney is not None
    assert (facts.kidney.derived, facts.kidney.egfr) == (False, 25)
    assert facts.egfr_below_cap is True


def test_a_creatinine_a_minute_newer_wins() -> None:
    facts = kidney_facts(
        egfr(25, effective="2026-11-18T07:30:00Z"),
        creatinine(1.0, effective="2026-11-18T07:31:00Z"),
    )
    assert facts.kidney is not None
    assert facts.kidney.derived is True
    assert facts.kidney.egfr == pytest.approx(ckd_epi_2021(1.0, 50, True))
    assert facts.egfr_below_cap is False


def test_a_newer_creatinine_that_cannot_be_used_leaves_the_reported_egfr() -> None:
    # No sex on record: CKD-EPI cannot be computed, so the older reported eGFR stands.
    facts = kidney_facts(
        egfr(25, days_ago=10), creatinine(1.0, days_ago=1), pat=patient(BORN_1976, None)
    )
    assert facts.kidney is not None
    assert (facts.kidney.source, facts.kidney.egfr) == ("reported eGFR", 25)


def test_only_a_creatinine() -> None:
    facts = kidney_facts(creatinine(4.0, days_ago=3))
    assert facts.kidney is not None
    assert facts.kidney.derived is True
    assert facts.kidney.egfr == pytest.approx(ckd_epi_2021(4.0, 50, True))  # 13.0
    assert facts.kidney_failure is True
    assert facts.kidney_failure_source == (
        "eGFR 13 mL/min/1.73 m2, CKD-EPI 2021 from creatinine 4.0 mg/dL on 2026-11-17"
    )


def test_no_kidney_data() -> None:
    facts = kidney_facts()
    assert facts.kidney is None
    assert (facts.kidney_failure, facts.egfr_below_cap, facts.kidney_failure_source) == (
        False,
        False,
        None,
    )


# --- eGFR unit spellings ----------------------------------------------------------------------

EGFR_UNITS = [
    "mL/min/1.73m2",
    "mL/min/1.73m^2",
    "mL/min/1.73 m2",
    "mL/min/{1.73_m2}",
    "ML/MIN/1.73M2",
    "ml/min/1.73m^2",
    "mL/Min/1.73 M2",
    "ML/MIN/{1.73_M2}",
]


@pytest.mark.parametrize("unit", EGFR_UNITS)
@pytest.mark.parametrize("ucum", [True, False], ids=["ucum-code", "unit-text-only"])
def test_every_egfr_unit_spelling_is_read(unit: str, ucum: bool) -> None:
    resource = observation(EGFR, 24, unit, system=UCUM if ucum else None)
    facts = kidney_facts(resource)
    assert facts.kidney is not None
    assert (facts.kidney.egfr, facts.kidney.source) == (24, "reported eGFR")
    assert facts.egfr_below_cap is True
    assert facts.skipped == ()


@pytest.mark.parametrize("unit", ["mL/min/1.73m2", "mL/min/{1.73_m2}", "mL/min/1.73 m2"])
def test_an_egfr_in_value_string_is_read(unit: str) -> None:
    facts = kidney_facts(value_string(EGFR, f"<15 {unit}"))
    assert facts.kidney is not None
    assert (facts.kidney.egfr, facts.kidney.comparator) == (15, "<")
    assert facts.kidney_failure is True


@pytest.mark.parametrize("unit", ["mg/dL", "%", "mL/s"])
def test_an_egfr_in_another_unit_is_not_read(unit: str) -> None:
    facts = kidney_facts(observation(EGFR, 24, unit, obs_id="odd"))
    assert facts.kidney is None
    assert [(s.reason, s.resource_id) for s in facts.skipped] == [("unrecognised unit", "odd")]


# --- lines and comparators ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "below_cap", "failure"),
    [
        (45, False, False),
        (30, False, False),
        (29.9, True, False),
        (29, True, False),
        (15, True, False),
        (14.9, False, True),  # kidney failure, not "15-29"
        (14, False, True),
        (5, False, True),
    ],
)
def test_egfr_lines(value: float, below_cap: bool, failure: bool) -> None:
    shown = kidney_facts(egfr(value)).kidney
    assert shown is not None and shown.shown == f"{value:g} mL/min/1.73 m2"
    facts = kidney_facts(egfr(value))
    assert (facts.egfr_below_cap, facts.kidney_failure) == (below_cap, failure)
    assert facts.kidney_failure_source == (
        f"eGFR {value:g} mL/min/1.73 m2, reported eGFR" if failure else None
    )


@pytest.mark.parametrize(
    ("comparator", "value", "below_cap", "failure"),
    [
        (">", 60, False, False),  # ">60": never low
        (">", 29, False, False),  # more than 29: not known to be low
        (">", 10, False, False),
        (">=", 14, False, False),
        ("<", 30, True, False),  # "<30": below the cap line
        ("<=", 30, False, False),  # at most 30: may be 30
        ("<=", 29, True, False),
        ("<", 15, False, True),  # "<15": kidney failure
        ("<=", 15, True, False),
        ("<", 16, True, False),  # may be 15: not known to be failure
    ],
)
def test_egfr_comparators(comparator: str, value: float, below_cap: bool, failure: bool) -> None:
    facts = kidney_facts(egfr(value, comparator=comparator))
    assert facts.kidney is not None
    assert facts.kidney.shown == f"{comparator}{value} mL/min/1.73 m2"
    assert (facts.egfr_below_cap, facts.kidney_failure) == (below_cap, failure)


@pytest.mark.parametrize(
    "text", [">60 mL/min/1.73m2", "> 60 mL/min/{1.73_m2}", ">90 mL/min/1.73m^2"]
)
def test_greater_than_in_value_string_is_never_low(text: str) -> None:
    facts = kidney_facts(value_string(EGFR, text))
    assert facts.kidney is not None and facts.kidney.comparator == ">"
    assert (facts.egfr_below_cap, facts.kidney_failure) == (False, False)


def test_greater_than_60_reported_after_a_low_creatinine_eGFR() -> None:
    # The newest is the lab's ">60": the patient is not in kidney failure any more.
    facts = kidney_facts(creatinine(4.0, days_ago=20), egfr(60, days_ago=1, comparator=">"))
    assert (facts.egfr_below_cap, facts.kidney_failure) == (False, False)


@pytest.mark.parametrize(
    ("scr", "age_born", "sex", "below_cap", "failure"),
    [
        # CKD-EPI 2021: female 50 y, Scr 1.9 -> 31.7; 2.0 -> 29.9; 3.4 -> 15.8; 3.6 -> 14.8
        (1.9, BORN_1976, "female", False, False),
        (2.0, BORN_1976, "female", True, False),
        (3.4, BORN_1976, "female", True, False),
        (3.6, BORN_1976, "female", False, True),
    ],
)
@pytest.mark.parametrize("unit", ["mg/dL", "umol/L"])
def test_creatinine_derived_lines(
    scr: float, age_born: str, sex: str, below_cap: bool, failure: bool, unit: str
) -> None:
    value = scr if unit == "mg/dL" else round(scr * 88.42, 2)
    facts = kidney_facts(creatinine(value, unit), pat=patient(age_born, sex))
    assert facts.kidney is not None and facts.kidney.derived
    assert facts.kidney.egfr == pytest.approx(ckd_epi_2021(scr, 50, True), rel=1e-4)
    assert (facts.egfr_below_cap, facts.kidney_failure) == (below_cap, failure)


# --- kidney failure from a Condition ----------------------------------------------------------

KIDNEY_FAILURE_CODES = [
    (SNOMED, "46177005", "End-stage renal disease"),
    (SNOMED, "433146000", "Chronic kidney disease stage 5"),
    (SNOMED, "105502003", "Dependence on renal dialysis"),
    (ICD10CM, "N18.6", "End stage renal disease"),
    (ICD10CM, "Z99.2", "Dependence on renal dialysis"),
]


@pytest.mark.parametrize(("system", "code", "display"), KIDNEY_FAILURE_CODES)
def test_each_kidney_failure_condition_code(system: str, code: str, display: str) -> None:
    # With a normal eGFR (a dialysis patient's eGFR says little): the Condition decides.
    facts = kidney_facts(
        egfr(62), conditions=[condition(code, display, system=system, cond_id="c1")]
    )
    assert facts.kidney_failure is True
    assert facts.egfr_below_cap is False
    assert facts.kidney_failure_source == f"Condition: {display}"
    assert [(c.value_set, c.code, c.resource_id) for c in facts.conditions] == [
        ("kidney_failure", code, "c1")
    ]


def test_a_condition_wins_over_an_egfr_in_the_cap_range() -> None:
    facts = kidney_facts(egfr(22), conditions=[condition("Z99.2", "Dialysis", system=ICD10CM)])
    assert (facts.kidney_failure, facts.egfr_below_cap) == (True, False)
    assert facts.kidney_failure_source == "Condition: Dialysis"


def test_a_condition_is_named_before_a_low_egfr() -> None:
    facts = kidney_facts(egfr(9), conditions=[condition("46177005", "ESRD")])
    assert facts.kidney_failure_source == "Condition: ESRD"


@pytest.mark.parametrize(
    ("system", "code"),
    [
        (SNOMED, "433144002"),  # CKD stage 3: not kidney failure
        (SNOMED, "431857002"),  # CKD stage 4
        (ICD10CM, "N18.4"),
        (ICD10CM, "N18.5"),  # stage 5 without dialysis: in the ICD-10-CM list only as N18.6
        ("http://snomed.info/sct", "N18.6"),  # an ICD-10-CM code under the SNOMED system
        (ICD10CM, "46177005"),
    ],
)
def test_other_kidney_conditions_are_not_kidney_failure(system: str, code: str) -> None:
    facts = kidney_facts(conditions=[condition(code, "Chronic kidney disease", system=system)])
    assert facts.kidney_failure is False
    assert facts.conditions == ()


@pytest.mark.parametrize(
    ("clinical", "verification", "counts"),
    [
        ("active", "confirmed", True),
        ("recurrence", "confirmed", True),
        ("relapse", "confirmed", True),
        ("active", "provisional", True),
        ("active", None, True),
        ("inactive", "confirmed", False),
        ("resolved", "confirmed", False),
        ("remission", "confirmed", False),
        ("active", "entered-in-error", False),
        ("active", "refuted", False),
        (None, "entered-in-error", False),
    ],
)
def test_condition_status(clinical: str | None, verification: str | None, counts: bool) -> None:
    found = condition(
        "46177005", "ESRD", clinical_status=clinical, verification_status=verification
    )
    facts = kidney_facts(conditions=[found])
    assert facts.kidney_failure is counts
    assert facts.kidney_failure_source == ("Condition: ESRD" if counts else None)


@pytest.mark.parametrize(
    ("abatement", "counts"),
    [
        (None, True),  # no clinicalStatus and no abatement: active
        ("2025-03-01", False),  # abated (a transplant ended dialysis)
        ("2026-11-19T08:00:00Z", False),
        ("2027-01-01", True),  # abatement in the future: not yet
    ],
)
def test_condition_without_clinical_status_is_active_until_it_abates(
    abatement: str | None, counts: bool
) -> None:
    found = condition("105502003", "Dialysis", clinical_status=None, abatement=abatement)
    assert kidney_facts(conditions=[found]).kidney_failure is counts


def test_an_inactive_condition_does_not_hide_an_active_one() -> None:
    facts = kidney_facts(
        conditions=[
            condition("46177005", "ESRD (old entry)", clinical_status="resolved"),
            condition("Z99.2", "Dependence on renal dialysis", system=ICD10CM),
        ]
    )
    assert facts.kidney_failure_source == "Condition: Dependence on renal dialysis"


def test_no_condition_prefetch_means_unknown_not_failure() -> None:
    # The Condition key is optional: absent (no FHIR server) is "unknown", never an error.
    absent = kidney_facts(egfr(40))
    empty = kidney_facts(egfr(40), conditions=[])
    for facts in (absent, empty):
        assert (facts.conditions, facts.kidney_failure) == ((), False)


def test_other_resources_in_the_condition_key_are_ignored() -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    facts = kidney_facts(conditions=[outcome])
    assert (facts.conditions, facts.kidney_failure) == ((), False)


@pytest.mark.parametrize(
    ("value", "shown"), [(45.4, "45"), (30.4, "30"), (29.6, "29.6"), (15.2, "15"), (14.6, "14.6")]
)
def test_egfr_is_printed_whole_unless_rounding_crosses_a_line(value: float, shown: str) -> None:
    kidney = kidney_facts(egfr(value)).kidney
    assert kidney is not None and kidney.shown == f"{shown} mL/min/1.73 m2"
