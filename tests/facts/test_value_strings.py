"""Results as EHRs send them (contract 4.7): ``valueString`` results, unreadable results traced
with their date, the magnesium and albumin value sets, and the precision the lab reported."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cds_service.facts import LabResult, SkippedResult, read_observation
from cds_service.protocol import decode_hook_body

from .builders import (
    ALBUMIN_BCG,
    ALBUMIN_BCP,
    ALBUMIN_ELECTROPHORESIS,
    EGFR,
    MG,
    MG_MOLAR,
    K,
    calcium,
    evaluate,
    fired,
    make_facts,
    mg,
    model,
    observation,
    rx,
    shipped,
    value_string,
)


def read(resource: dict[str, Any]) -> LabResult | SkippedResult | None:
    return read_observation(model(resource), shipped())


# --- valueString ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text", "comparator", "number", "unit", "canonical"),
    [
        (MG_MOLAR, "<0.5 mmol/L", "<", "0.5", "mmol/L", 0.5),
        (MG_MOLAR, "< 0.5 mmol/L", "<", "0.5", "mmol/L", 0.5),
        (MG_MOLAR, "<=0.4 mmol/L", "<=", "0.4", "mmol/L", 0.4),
        (MG_MOLAR, "≤0.4 mmol/L", "<=", "0.4", "mmol/L", 0.4),
        (MG_MOLAR, "0.45 mmol/L", None, "0.45", "mmol/L", 0.45),
        (MG_MOLAR, "0.45 mmol/l", None, "0.45", "mmol/l", 0.45),
        (MG_MOLAR, "0.90 mEq/L", None, "0.90", "mEq/L", 0.45),  # mEq/L is half
        (MG, "1.1 mg/dL", None, "1.1", "mg/dL", 1.1 / 2.4305),
        (MG, "1.10 mg/dL", None, "1.10", "mg/dL", 1.1 / 2.4305),
        (MG, "  1.8   mg/dL  ", None, "1.8", "mg/dL", 1.8 / 2.4305),
        (MG, "1.8mg/dL", None, "1.8", "mg/dL", 1.8 / 2.4305),
        (MG, "≥ 2.1 mg/dL", ">=", "2.1", "mg/dL", 2.1 / 2.4305),
        (EGFR, ">60 mL/min/{1.73_m2}", ">", "60", "mL/min/{1.73_m2}", 60),
        (EGFR, "> 60 mL/min/1.73 m2", ">", "60", "mL/min/1.73 m2", 60),
        (EGFR, ">60 mL/min/1.73m2", ">", "60", "mL/min/1.73m2", 60),
        (K, "3.0 mmol/L", None, "3.0", "mmol/L", 3.0),
    ],
)
def test_a_value_string_is_read(
    code: str,
    text: str,
    comparator: str | None,
    number: str,
    unit: str,
    canonical: float,
) -> None:
    result = read(value_string(code, text, obs_id="vs"))
    assert isinstance(result, LabResult), result
    assert (result.comparator, result.number, result.unit) == (comparator, number, unit)
    assert result.canonical == pytest.approx(canonical)
    assert result.shown == f"{comparator or ''}{number} {unit}"
    assert result.resource_id == "vs"


@pytest.mark.parametrize(
    ("text", "reason", "unit"),
    [
        ("<0.5", "valueString has no unit", None),  # no unit in the text: not usable
        ("0.45", "valueString has no unit", None),
        (">60", "valueString has no unit", None),
        ("Hemolyzed", "valueString is not a number with a unit", None),
        ("see comment", "valueString is not a number with a unit", None),
        ("TNP", "valueString is not a number with a unit", None),
        (".5 mmol/L", "valueString is not a number with a unit", None),
        ("-0.5 mmol/L", "valueString is not a number with a unit", None),
        ("1,2 mg/dL", "unrecognised unit", ",2 mg/dL"),  # a decimal comma is not guessed
        ("0.5 - 0.9 mmol/L", "unrecognised unit", "- 0.9 mmol/L"),
        ("0.45 mmol/L (L)", "unrecognised unit", "mmol/L (L)"),
        ("1e3 mg/dL", "unrecognised unit", "e3 mg/dL"),
        ("0.45 mg%", "unrecognised unit", "mg%"),
        ("12345678901234 mg/dL", "valueString number out of range", None),
    ],
)
def test_an_unreadable_value_string_is_traced_with_its_date(
    text: str, reason: str, unit: str | None
) -> None:
    resource = value_string(MG, text, days_ago=2, obs_id="odd")
    result = read(resource)
    assert isinstance(result, SkippedResult)
    assert (result.analyte, result.code, result.reason, result.unit) == (
        "magnesium",
        MG,
        reason,
        unit,
    )
    assert (result.resource_id, result.day, result.unreadable) == ("odd", "2026-11-18", True)
    facts = make_facts(labs=[resource])
    assert facts.current == {}
    assert facts.skipped == (result,)
    assert facts.newest_unreadable("magnesium") == result


def test_a_value_string_result_is_compared_like_a_quantity() -> None:
    # "<0.5 mmol/L" is below the critical line 0.50 mmol/L ("<" means at most).
    finding = fired("hypomagnesemia", labs=[value_string(MG_MOLAR, "<0.5 mmol/L")])
    assert (finding.indicator, finding.values["mg"]) == ("critical", "<0.5 mmol/L")
    finding = fired("hypomagnesemia", labs=[value_string(MG, "1.5 mg/dL")])
    assert (finding.indicator, finding.values["mg"]) == ("warning", "1.5 mg/dL")


def test_a_quantity_wins_over_a_value_string() -> None:
    resource = mg(1.9, "mg/dL")
    resource["valueString"] = "0.4 mmol/L"
    result = read(resource)
    assert isinstance(result, LabResult)
    assert result.shown == "1.9 mg/dL"


# --- the newest unreadable result -------------------------------------------------------------


def test_the_newest_unreadable_result_newer_than_every_readable_one() -> None:
    facts = make_facts(
        labs=[mg(1.9, days_ago=10), value_string(MG, "Hemolyzed", days_ago=2, obs_id="hem")]
    )
    unreadable = facts.newest_unreadable("magnesium")
    assert unreadable is not None
    assert (unreadable.resource_id, unreadable.day) == ("hem", "2026-11-18")
    assert [r.number for r in facts.results("magnesium")] == ["1.9"]


def test_an_unreadable_result_older_than_a_readable_one_is_not_the_newest() -> None:
    facts = make_facts(labs=[mg(1.9, days_ago=2), value_string(MG, "Hemolyzed", days_ago=10)])
    assert facts.newest_unreadable("magnesium") is None
    assert [s.reason for s in facts.skipped] == ["valueString is not a number with a unit"]


def test_an_unreadable_result_at_the_same_time_as_a_readable_one_is_not_the_newest() -> None:
    same = "2026-11-18T08:00:00Z"
    facts = make_facts(
        labs=[mg(1.9, effective=same), value_string(MG, "see comment", effective=same)]
    )
    assert facts.newest_unreadable("magnesium") is None


def test_of_several_unreadable_results_the_newest_is_named() -> None:
    facts = make_facts(
        labs=[
            value_string(MG, "Hemolyzed", days_ago=9, obs_id="a"),
            value_string(MG, "TNP", days_ago=3, obs_id="b"),
            observation(MG, 1.2, "mg%", days_ago=6, obs_id="c"),
        ]
    )
    newest = facts.newest_unreadable("magnesium")
    assert newest is not None and newest.resource_id == "b"


def test_an_unreadable_result_of_another_analyte_does_not_count() -> None:
    facts = make_facts(labs=[mg(1.9, days_ago=5), value_string(K, "Hemolyzed", days_ago=1)])
    assert facts.newest_unreadable("magnesium") is None
    newest = facts.newest_unreadable("potassium")
    assert newest is not None and newest.code == K


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled", "preliminary"])
def test_a_result_of_an_unusable_status_is_skipped_but_not_unreadable(status: str) -> None:
    facts = make_facts(labs=[value_string(MG, "Hemolyzed", status=status)])
    assert [(s.reason, s.unreadable) for s in facts.skipped] == [(f"status {status!r}", False)]
    assert facts.newest_unreadable("magnesium") is None


def test_an_undated_unreadable_result_is_not_the_newest() -> None:
    resource = value_string(MG, "Hemolyzed")
    del resource["effectiveDateTime"]
    facts = make_facts(labs=[resource])
    assert [(s.reason, s.effective) for s in facts.skipped] == [
        ("valueString is not a number with a unit", None)
    ]
    assert facts.newest_unreadable("magnesium") is None


def test_an_unreadable_result_stamped_beyond_the_clock_skew_is_not_the_newest() -> None:
    # A readable result dated two days ahead is not used; an unreadable one is no different:
    # the card must not say the "latest" Mg, dated in the future, could not be read.
    future = "2026-11-22T08:00:00Z"
    facts = make_facts(labs=[mg(1.9, days_ago=3), value_string(MG, "Hemolyzed", effective=future)])
    assert facts.newest_unreadable("magnesium") is None
    # A few hours ahead is clock skew: still the newest.
    soon = "2026-11-20T18:00:00Z"
    facts = make_facts(labs=[mg(1.9, days_ago=3), value_string(MG, "Hemolyzed", effective=soon)])
    newest = facts.newest_unreadable("magnesium")
    assert newest is not None and newest.day == "2026-11-20"


def test_an_unreadable_newest_mg_is_never_no_mg_on_record() -> None:
    labs = [value_string(MG, "Hemolyzed", days_ago=2)]
    why = evaluate("hypomagnesemia", labs=labs).why
    assert why == (
        "no Mg result in the last 30 days; the newest Mg (2026-11-18) could not be read: "
        "valueString is not a number with a unit"
    )
    gap = fired("mg-monitoring-gap", labs=labs, meds=[rx("tacrolimus")])
    assert gap.values["unreadable_date"] == "2026-11-18"


# --- value sets -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["1751-7", ALBUMIN_BCG, ALBUMIN_BCP])
def test_albumin_method_codes_correct_calcium(code: str) -> None:
    # 4.7: bromocresol green and purple albumin are albumin; 7.6 + 0.8 x (4.0 - 2.5) = 8.8.
    facts = make_facts(labs=[calcium(7.6), observation(code, 2.5, "g/dL")])
    corrected = facts.corrected_calcium
    assert corrected is not None and corrected.albumin is not None
    assert corrected.albumin.code == code
    assert corrected.corrected_mg_per_dl == pytest.approx(8.8)


def test_electrophoresis_albumin_is_not_used() -> None:
    resource = observation(ALBUMIN_ELECTROPHORESIS, 2.5, "g/dL")
    assert read(resource) is None
    facts = make_facts(labs=[calcium(7.6), resource])
    assert facts.corrected_calcium is not None
    assert facts.corrected_calcium.albumin is None
    assert facts.corrected_calcium.corrected_mg_per_dl == pytest.approx(7.6)


# --- reported precision -----------------------------------------------------------------------


def _from_a_hook_body(resource: dict[str, Any], value_text: str) -> LabResult:
    """The Observation as the service decodes it from a request body, with the number written
    exactly as ``value_text``."""
    body = json.dumps({"hook": "patient-view", "prefetch": {"obs": resource}})
    number = json.dumps(resource["valueQuantity"]["value"])
    assert f'"value": {number}' in body
    decoded = decode_hook_body(
        body.replace(f'"value": {number}', f'"value": {value_text}').encode()
    )
    result = read_observation(decoded["prefetch"]["obs"], shipped())
    assert isinstance(result, LabResult)
    return result


@pytest.mark.parametrize(
    ("written", "number", "value"),
    [("3.0", "3.0", 3.0), ("1.20", "1.20", 1.2), ("0.50", "0.50", 0.5), ("2", "2", 2.0)],
)
def test_the_precision_the_lab_reported_is_kept(written: str, number: str, value: float) -> None:
    result = _from_a_hook_body(mg(9.9, "mg/dL"), written)
    assert (result.number, result.value, result.shown) == (number, value, f"{number} mg/dL")


def test_a_float_keeps_its_written_digits() -> None:
    result = read(mg(3.0, "mg/dL"))
    assert isinstance(result, LabResult)
    assert (result.number, result.shown) == ("3.0", "3.0 mg/dL")
    card = fired("mg-refractory-hypokalemia", labs=[observation(K, 3.0, "mmol/L"), mg(1.2)])
    assert card.values["k"] == "3.0 mmol/L"
