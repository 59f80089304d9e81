"""Units and thresholds: every threshold of the contract at, just below and just above it, in
every unit the value sets accept. A value printed exactly at a threshold is NOT below it, and
mEq/L is never read as mmol/L for the divalent Mg and Ca (1.32 mEq/L = 0.66 mmol/L)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from cds_service.content import Threshold
from cds_service.facts import LabResult, SkippedResult, is_above, is_below, read_observation

from .builders import (
    CA,
    ICA,
    K_BLOOD,
    MG,
    MG_MOLAR,
    UCUM,
    K,
    albumin,
    calcium,
    evaluate,
    fired,
    ionized_ca,
    make_facts,
    mg,
    model,
    observation,
    potassium,
    rx,
    shipped,
    silent,
)


def lab(resource: dict[str, object]) -> LabResult:
    result = read_observation(model(resource), shipped())
    assert isinstance(result, LabResult), result
    return result


def tier(value: float, unit: str, *, on_cni: bool = False) -> str | None:
    """The hypomagnesemia indicator for one current Mg result (None: no card)."""
    meds = [rx("tacrolimus")] if on_cni else []
    outcome = evaluate("hypomagnesemia", labs=[mg(value, unit)], meds=meds)
    return outcome.finding.indicator if outcome.finding else None


# --- Mg tiers -------------------------------------------------------------------------------
# (value, unit, indicator off a CNI, indicator on a CNI)
MG_TIERS = [
    # critical line 0.50 mmol/L = 1.00 mEq/L; twin 1.2 mg/dL = 12 mg/L
    (0.49, "mmol/L", "critical", "critical"),
    (0.50, "mmol/L", "warning", "warning"),
    (0.51, "mmol/L", "warning", "warning"),
    (0.98, "meq/L", "critical", "critical"),
    (1.00, "meq/L", "warning", "warning"),
    (1.02, "meq/L", "warning", "warning"),
    (1.1, "mg/dL", "critical", "critical"),
    (1.19, "mg/dL", "critical", "critical"),
    (1.2, "mg/dL", "warning", "warning"),
    (1.21, "mg/dL", "warning", "warning"),
    (11.9, "mg/L", "critical", "critical"),
    (12, "mg/L", "warning", "warning"),
    (12.1, "mg/L", "warning", "warning"),
    # low line 0.66 mmol/L = 1.32 mEq/L; twin 1.6 mg/dL = 16 mg/L
    (0.65, "mmol/L", "warning", "warning"),
    (0.66, "mmol/L", None, "info"),
    (0.67, "mmol/L", None, "info"),
    (1.30, "meq/L", "warning", "warning"),
    (1.32, "meq/L", None, "info"),
    (1.34, "meq/L", None, "info"),
    (1.5, "mg/dL", "warning", "warning"),
    (1.59, "mg/dL", "warning", "warning"),
    (1.6, "mg/dL", None, "info"),
    (1.61, "mg/dL", None, "info"),
    (15.9, "mg/L", "warning", "warning"),
    (16, "mg/L", None, "info"),
    (16.1, "mg/L", None, "info"),
    # CNI target 0.70 mmol/L = 1.40 mEq/L; twin 1.7 mg/dL = 17 mg/L
    (0.69, "mmol/L", None, "info"),
    (0.70, "mmol/L", None, None),
    (0.71, "mmol/L", None, None),
    (1.38, "meq/L", None, "info"),
    (1.40, "meq/L", None, None),
    (1.42, "meq/L", None, None),
    (1.69, "mg/dL", None, "info"),
    (1.7, "mg/dL", None, None),
    (1.8, "mg/dL", None, None),
    (16.9, "mg/L", None, "info"),
    (17, "mg/L", None, None),
    (17.1, "mg/L", None, None),
]


@pytest.mark.parametrize(("value", "unit", "off_cni", "on_cni"), MG_TIERS)
def test_mg_tier_at_and_around_each_threshold(
    value: float, unit: str, off_cni: str | None, on_cni: str | None
) -> None:
    assert tier(value, unit) == off_cni
    assert tier(value, unit, on_cni=True) == on_cni


@pytest.mark.parametrize(
    ("value", "unit", "threshold", "indicator"),
    [
        (1.1, "mg/dL", "1.2 mg/dL", "critical"),
        (11.9, "mg/L", "1.2 mg/dL", "critical"),
        (0.49, "mmol/L", "0.50 mmol/L", "critical"),  # printed as the contract prints it
        (0.98, "meq/L", "0.50 mmol/L", "critical"),
        (1.5, "mg/dL", "1.6 mg/dL", "warning"),
        (0.65, "mmol/L", "0.66 mmol/L", "warning"),
        (1.30, "meq/L", "0.66 mmol/L", "warning"),
    ],
)
def test_mg_card_quotes_reported_value_and_the_threshold_of_its_own_family(
    value: float, unit: str, threshold: str, indicator: str
) -> None:
    finding = fired("hypomagnesemia", labs=[mg(value, unit, 2)])
    assert finding.indicator == indicator
    assert finding.values["mg"] == f"{json.dumps(value)} {unit}"
    assert finding.values["threshold"] == threshold
    assert finding.values["mg_date"] == "2026-11-18"


def test_mg_card_row_shows_mmol_equivalent_of_a_mass_result() -> None:
    finding = fired("hypomagnesemia", labs=[mg(1.1, "mg/dL")])
    assert finding.rows[0].value == "1.1 mg/dL (0.45 mmol/L)"


def test_meq_is_half_mmol_for_magnesium_never_one_to_one() -> None:
    # 1.32 mEq/L is 0.66 mmol/L (not low); read 1:1 it would be 1.32 mmol/L, i.e. normal too,
    # but 1.2 mEq/L must be low (0.6 mmol/L) even though 1.2 "mmol/L" would be normal.
    result = lab(mg(1.2, "meq/L"))
    assert result.canonical == pytest.approx(0.60)
    assert result.family == "molar"
    assert tier(1.2, "meq/L") == "warning"
    assert tier(1.2, "mmol/L") is None


# --- digoxin line 0.82 mmol/L = 1.64 mEq/L; twin 2.0 mg/dL = 20 mg/L (4.2) ------------------
# v1 read seed 003's "2 mEq/L" literally (1.0 mmol/L, 2.4 mg/dL): a unit slip, above normal.
@pytest.mark.parametrize(
    ("value", "unit", "fires"),
    [
        (0.81, "mmol/L", True),
        (0.82, "mmol/L", False),
        (0.83, "mmol/L", False),
        (0.99, "mmol/L", False),
        (1.62, "meq/L", True),
        (1.64, "meq/L", False),
        (1.66, "meq/L", False),
        (1.9, "mg/dL", True),
        (1.99, "mg/dL", True),
        (2.0, "mg/dL", False),
        (2.1, "mg/dL", False),
        (2.3, "mg/dL", False),
        (19.9, "mg/L", True),
        (20, "mg/L", False),
        (20.1, "mg/L", False),
    ],
)
def test_digoxin_target(value: float, unit: str, fires: bool) -> None:
    outcome = evaluate("mg-digoxin", labs=[mg(value, unit)], meds=[rx("digoxin")])
    assert outcome.fired is fires, outcome.why
    if outcome.finding is not None:
        assert outcome.finding.indicator == "warning"
        assert outcome.finding.values["mg"] == f"{json.dumps(value)} {unit}"


# --- potassium 3.5 (low) and 3.0 (critical with low Mg) ------------------------------------
@pytest.mark.parametrize("unit", ["mmol/L", "meq/L", "mEq/L", "MMOL/L"])
@pytest.mark.parametrize(
    ("k", "expected"),
    [
        (3.6, None),
        (3.5, None),
        (3.49, "warning"),
        (3.4, "warning"),
        (3.1, "warning"),
        (3.0, "warning"),
        (2.99, "critical"),
        (2.9, "critical"),
    ],
)
def test_potassium_thresholds_with_low_mg(k: float, unit: str, expected: str | None) -> None:
    outcome = evaluate("mg-refractory-hypokalemia", labs=[potassium(k, unit), mg(0.60, "mmol/L")])
    assert (outcome.finding.indicator if outcome.finding else None) == expected
    if outcome.finding:
        assert outcome.finding.values["k"] == f"{json.dumps(k)} {unit}"  # as reported: "3.0"
        assert outcome.finding.values["mg"] == "0.6 mmol/L"


def test_potassium_meq_is_one_to_one() -> None:
    assert lab(potassium(3.4, "meq/L")).canonical == pytest.approx(3.4)


def test_blood_potassium_code_counts() -> None:
    finding = fired(
        "mg-refractory-hypokalemia", labs=[potassium(3.2, code=K_BLOOD), mg(1.4, "mg/dL")]
    )
    assert finding.values["k"] == "3.2 mmol/L"


# --- total calcium 2.12 mmol/L = 4.24 mEq/L; twin 8.5 mg/dL (corrected) ---------------------
CA_TOTAL = [
    (8.4, "mg/dL", True),
    (8.49, "mg/dL", True),
    (8.5, "mg/dL", False),
    (8.6, "mg/dL", False),
    (2.11, "mmol/L", True),
    (2.12, "mmol/L", False),
    (2.13, "mmol/L", False),
    (4.22, "meq/L", True),
    (4.24, "meq/L", False),
    (4.26, "meq/L", False),
]


@pytest.mark.parametrize(("value", "unit", "fires"), CA_TOTAL)
@pytest.mark.parametrize("with_albumin", [True, False], ids=["albumin-4.0", "no-albumin"])
def test_total_calcium_threshold(value: float, unit: str, fires: bool, with_albumin: bool) -> None:
    # An albumin of 4.0 g/dL makes the Payne correction zero, so corrected == reported.
    labs = [calcium(value, unit), mg(0.60, "mmol/L")]
    if with_albumin:
        labs.append(albumin(4.0))
    outcome = evaluate("mg-refractory-hypocalcemia", labs=labs)
    assert outcome.fired is fires, outcome.why
    if outcome.finding:
        assert outcome.finding.indicator == "warning"


# --- ionized calcium 1.15 mmol/L = 2.30 mEq/L; twin 4.6 mg/dL -------------------------------
@pytest.mark.parametrize(
    ("value", "unit", "fires"),
    [
        (1.14, "mmol/L", True),
        (1.15, "mmol/L", False),
        (1.16, "mmol/L", False),
        (2.28, "meq/L", True),
        (2.30, "meq/L", False),
        (2.32, "meq/L", False),
        (4.5, "mg/dL", True),
        (4.59, "mg/dL", True),
        (4.6, "mg/dL", False),
        (4.7, "mg/dL", False),
    ],
)
def test_ionized_calcium_threshold(value: float, unit: str, fires: bool) -> None:
    outcome = evaluate(
        "mg-refractory-hypocalcemia", labs=[ionized_ca(value, unit), mg(0.60, "mmol/L")]
    )
    assert outcome.fired is fires, outcome.why
    if outcome.finding:
        assert outcome.finding.values["ca_label"] == "Ionized Ca"
        assert outcome.finding.values["ca"] == f"{value:g} {unit}"


# --- UCUM code vs unit text, case, unrecognised units ---------------------------------------
def test_ucum_code_wins_over_the_unit_text() -> None:
    # The text disagrees; with system UCUM the code is authoritative.
    result = lab(mg(1.1, "mg/dL", unit_text="mmol/L"))
    assert result.family == "mass"
    assert result.unit == "mg/dL"
    assert tier(1.1, "mg/dL") == "critical"


def test_unit_text_is_used_when_the_system_is_not_ucum() -> None:
    resource = observation(MG, 1.1, "mg/dL", system="http://lab.example.org/units")
    assert resource["valueQuantity"]["code"] == "LOCAL-UNIT"
    result = lab(resource)
    assert result.unit == "mg/dL"
    facts = make_facts(labs=[resource])
    assert facts.current["magnesium"].mg_per_dl == 1.1


def test_unit_text_without_any_system() -> None:
    result = lab(observation(MG_MOLAR, 0.45, "mmol/L", system=None))
    assert result.canonical == pytest.approx(0.45)


@pytest.mark.parametrize("unit", ["MG/DL", "Mg/dL", "mg/dl", " mg/dL "])
def test_units_are_case_insensitive(unit: str) -> None:
    result = lab(observation(MG, 1.1, unit, system=None))
    assert result.family == "mass"
    assert result.mg_per_dl == 1.1
    outcome = evaluate("hypomagnesemia", labs=[observation(MG, 1.1, unit, system=None)])
    assert outcome.finding is not None
    assert outcome.finding.indicator == "critical"


@pytest.mark.parametrize(
    ("code", "unit"),
    [(MG, "mg%"), (MG, "g/L"), (MG_MOLAR, "umol/L"), (K, "mg/dL"), (CA, "mg/L"), (ICA, "mg/L")],
)
def test_unrecognised_unit_is_not_used_and_is_listed_in_skipped(code: str, unit: str) -> None:
    resource = observation(code, 0.4, unit, obs_id="odd-unit")
    read = read_observation(model(resource), shipped())
    assert isinstance(read, SkippedResult)
    assert read.reason == "unrecognised unit"
    assert read.unit == unit
    facts = make_facts(labs=[resource])
    assert facts.current == {}
    assert [(s.code, s.reason, s.resource_id) for s in facts.skipped] == [
        (code, "unrecognised unit", "odd-unit")
    ]


def test_unrecognised_unit_does_not_fire_hypomagnesemia() -> None:
    silent("hypomagnesemia", labs=[observation(MG, 0.4, "mg%")])


def test_no_unit_at_all_is_not_used() -> None:
    resource = observation(MG, 1.1, "mg/dL")
    del resource["valueQuantity"]["unit"], resource["valueQuantity"]["code"]
    read = read_observation(model(resource), shipped())
    assert isinstance(read, SkippedResult)
    assert read.reason == "unrecognised unit"


# --- comparators ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("comparator", "value", "unit", "expected", "shown"),
    [
        ("<", 1.2, "mg/dL", "critical", "<1.2 mg/dL"),  # strictly below the printed line
        ("<=", 1.2, "mg/dL", "warning", "<=1.2 mg/dL"),  # at most 1.2: not below 1.2
        ("<", 0.5, "mmol/L", "critical", "<0.5 mmol/L"),
        ("<=", 0.5, "mmol/L", "warning", "<=0.5 mmol/L"),
        ("<", 0.3, "mmol/L", "critical", "<0.3 mmol/L"),
        ("<", 1.6, "mg/dL", "warning", "<1.6 mg/dL"),
        ("<=", 1.6, "mg/dL", None, ""),
        (">", 0.4, "mmol/L", None, ""),  # a ">" value is never read as low
        (">=", 1.0, "mg/dL", None, ""),
    ],
)
def test_comparator(
    comparator: str, value: float, unit: str, expected: str | None, shown: str
) -> None:
    outcome = evaluate("hypomagnesemia", labs=[mg(value, unit, comparator=comparator)])
    assert (outcome.finding.indicator if outcome.finding else None) == expected
    if outcome.finding:
        assert outcome.finding.values["mg"] == shown


def test_unknown_comparator_is_ignored() -> None:
    result = lab(mg(1.1, "mg/dL", comparator="ad"))
    assert result.comparator is None


# --- conversion rounding never moves a result across a line (exhaustive) --------------------
# Every printed value from 0.01 to 6.00 (hundredths) in every Mg unit against every Mg line
# (below for the low lines, above for the high ones: both are checked against every line),
# and every printed Ca value from 1.00 to 12.00 against every Ca line, compared with exact
# decimal arithmetic.
MG_THRESHOLDS = [
    Threshold(mmol_per_l=0.50, mg_per_dl=1.2),
    Threshold(mmol_per_l=0.66, mg_per_dl=1.6),
    Threshold(mmol_per_l=0.70, mg_per_dl=1.7),
    Threshold(mmol_per_l=0.80, mg_per_dl=1.95),
    Threshold(mmol_per_l=0.82, mg_per_dl=2.0),
    Threshold(mmol_per_l=1.25, mg_per_dl=3.0),
    Threshold(mmol_per_l=2.0, mg_per_dl=4.8),
]
CA_THRESHOLDS = [
    Threshold(mmol_per_l=2.12, mg_per_dl=8.5),
    Threshold(mmol_per_l=1.87, mg_per_dl=7.5),  # 4.1: treat calcium now
    Threshold(mmol_per_l=1.15, mg_per_dl=4.6),
    Threshold(mmol_per_l=1.0, mg_per_dl=4.0),  # 4.1: ionized, treat calcium now
]


@pytest.mark.parametrize("threshold", MG_THRESHOLDS, ids=lambda t: f"{t.mmol_per_l}")
def test_printed_mg_value_compares_exactly_in_every_unit(threshold: Threshold) -> None:
    limit_mmol = Decimal(str(threshold.mmol_per_l))
    limit_mg = Decimal(str(threshold.mg_per_dl))
    wrong = []
    for hundredths in range(1, 601):
        printed = Decimal(hundredths) / 100
        value = float(printed)
        checks = [
            # mmol/L and mEq/L against the mmol/L line; mEq/L is exactly half.
            (mg(value, "mmol/L"), printed, limit_mmol),
            (mg(value, "meq/L"), printed / 2, limit_mmol),
            # mg/dL and mg/L against the mg/dL twin.
            (mg(value, "mg/dL"), printed, limit_mg),
            (mg(float(printed * 10), "mg/L"), printed, limit_mg),
        ]
        for resource, compared, limit in checks:
            result = lab(resource)
            if is_below(result, threshold) is not (compared < limit):
                wrong.append(("below", resource["valueQuantity"]))
            if is_above(result, threshold) is not (compared > limit):
                wrong.append(("above", resource["valueQuantity"]))
    assert wrong == []


@pytest.mark.parametrize("threshold", CA_THRESHOLDS, ids=lambda t: f"{t.mmol_per_l}")
def test_printed_ca_value_compares_exactly_in_every_unit(threshold: Threshold) -> None:
    limit_mmol = Decimal(str(threshold.mmol_per_l))
    limit_mg = Decimal(str(threshold.mg_per_dl))
    wrong = []
    for hundredths in range(100, 1201):
        printed = Decimal(hundredths) / 100
        value = float(printed)
        checks = [
            (calcium(value, "mg/dL"), printed < limit_mg),
            (calcium(value, "mmol/L"), printed < limit_mmol),
            (calcium(value, "meq/L"), printed / 2 < limit_mmol),
        ]
        wrong += [
            resource["valueQuantity"]
            for resource, expected in checks
            if is_below(lab(resource), threshold) is not expected
        ]
    assert wrong == []


def test_ucum_system_constant_matches_builder() -> None:
    assert mg(1.0)["valueQuantity"]["system"] == UCUM
