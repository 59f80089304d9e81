"""Data quality: which results count, which is current, and dates in every FHIR shape."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest

from cds_service.facts import LabResult, SkippedResult, build_facts, read_observation
from cds_service.profile import load_site_content

from .builders import (
    CA_BLOOD,
    CARDS,
    FIXED_NOW,
    K_BLOOD,
    MG,
    MG_BLOOD,
    MG_BLOOD_MOLAR,
    calcium,
    evaluate,
    fired,
    fired_topics,
    make_facts,
    mg,
    model,
    observation,
    outcomes,
    patient,
    potassium,
    rx,
    shipped,
    silent,
    with_settings,
)

# --- the current-lab window (30 days) -------------------------------------------------------


@pytest.mark.parametrize("days_ago", [31, 45, 90])
def test_stale_low_mg_does_not_fire_hypomagnesemia(days_ago: int) -> None:
    why = silent("hypomagnesemia", labs=[mg(1.0, "mg/dL", days_ago)])
    assert "no Mg result in the last 30 days" in why


def test_window_edge_exactly_30_days_is_current_a_minute_more_is_not() -> None:
    edge = observation(MG, 1.0, "mg/dL", effective="2026-10-21T12:00:00Z")
    finding = fired("hypomagnesemia", labs=[edge])
    assert finding.values["mg_date"] == "2026-10-21"
    older = observation(MG, 1.0, "mg/dL", effective="2026-10-21T11:59:00Z")
    silent("hypomagnesemia", labs=[older])


def test_stale_low_mg_on_a_cni_hands_over_to_monitoring_gap_at_once() -> None:
    # 4.8: a low Mg that is no longer current, on a CNI, is overdue at once (v1 waited for the
    # 42-day gap). 29 days: still current, so hypomagnesemia and no gap card.
    assert _topics([mg(1.0, "mg/dL", 29)]) == {"hypomagnesemia"}
    # 31 and 35 days: not current (no hypomagnesemia); the gap card quotes the old result,
    # warning because it was below the warning line (1.6 mg/dL).
    for days in (31, 35, 43):
        assert _topics([mg(1.0, "mg/dL", days)]) == {"mg-monitoring-gap"}
        finding = fired("mg-monitoring-gap", labs=[mg(1.0, "mg/dL", days)], meds=[rx("tacrolimus")])
        assert finding.indicator == "warning"
        assert finding.values["reason"] == "stale_low"
        assert finding.values["last_mg"] == "1.0 mg/dL"
        assert finding.values["last_mg_age_days"] == days
    # Below the CNI target but not the warning line: info.
    finding = fired("mg-monitoring-gap", labs=[mg(1.65, "mg/dL", 35)], meds=[rx("tacrolimus")])
    assert (finding.indicator, finding.values["reason"]) == ("info", "stale_low")
    # A normal Mg 35 days old is within the 42-day window: no card.
    silent("mg-monitoring-gap", labs=[mg(2.0, "mg/dL", 35)], meds=[rx("tacrolimus")])


def _topics(labs: list[dict[str, object]]) -> set[str]:
    facts = make_facts(labs=labs, meds=[rx("tacrolimus")])
    return {t for t, o in outcomes(facts).items() if o.fired}


def test_result_in_the_future_beyond_clock_skew_is_ignored() -> None:
    future = observation(MG, 1.0, "mg/dL", effective="2026-11-21T12:00:00Z")
    facts = make_facts(labs=[future])
    assert facts.current == {}
    assert facts.results("magnesium") == []


def test_result_a_few_hours_ahead_counts_as_current() -> None:
    soon = observation(MG, 1.0, "mg/dL", effective="2026-11-20T18:00:00Z")
    assert fired("hypomagnesemia", labs=[soon]).values["mg_date"] == "2026-11-20"


# --- status ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status", ["entered-in-error", "cancelled", "preliminary", "registered", "unknown"]
)
def test_unusable_status_is_ignored(status: str) -> None:
    resource = mg(1.0, status=status, obs_id="bad")
    read = read_observation(model(resource), shipped())
    assert isinstance(read, SkippedResult)
    assert read.reason == f"status {status!r}"
    facts = make_facts(labs=[resource])
    assert facts.current == {}
    assert [s.resource_id for s in facts.skipped] == ["bad"]
    silent("hypomagnesemia", labs=[resource])


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (None, "status None"),
        (7, "status 7"),
        ({"code": "final"}, "status of type dict"),
        (["final"], "status of type list"),
        # Nested close to the interpreter's recursion limit: its repr would overflow the stack.
        (functools.reduce(lambda inner, _: [inner], range(990), []), "status of type list"),
    ],
    ids=["absent", "number", "object", "array", "array-nested-990-deep"],
)
def test_status_that_is_not_a_code_is_named_by_its_type(status: object, reason: str) -> None:
    read = read_observation(model(mg(1.0, obs_id="odd") | {"status": status}), shipped())
    assert isinstance(read, SkippedResult)
    assert (read.reason, read.resource_id) == (reason, "odd")


@pytest.mark.parametrize("status", ["final", "amended", "corrected"])
def test_usable_status_counts(status: str) -> None:
    assert fired("hypomagnesemia", labs=[mg(1.0, status=status)]).indicator == "critical"


def test_entered_in_error_newer_result_does_not_hide_an_older_valid_one() -> None:
    labs = [mg(1.0, days_ago=3), mg(2.0, days_ago=1, status="entered-in-error")]
    assert fired("hypomagnesemia", labs=labs).values["mg"] == "1.0 mg/dL"


def test_preliminary_counts_when_configured_by_model_copy() -> None:
    content = with_settings(accept_preliminary_results=True)
    finding = fired("hypomagnesemia", labs=[mg(1.0, status="preliminary")], content=content)
    assert finding.indicator == "critical"
    # entered-in-error still does not.
    silent("hypomagnesemia", labs=[mg(1.0, status="entered-in-error")], content=content)


def test_preliminary_counts_when_configured_in_a_cards_copy(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    shutil.copytree(CARDS, cards)
    settings = cards / "settings.yaml"
    text = settings.read_text(encoding="utf-8")
    assert "accept_preliminary_results: false" in text
    settings.write_text(
        text.replace("accept_preliminary_results: false", "accept_preliminary_results: true"),
        encoding="utf-8",
    )
    content = load_site_content(cards)
    assert content.settings.accept_preliminary_results is True
    finding = fired("hypomagnesemia", labs=[mg(1.5, status="preliminary")], content=content)
    assert finding.indicator == "warning"


# --- values ---------------------------------------------------------------------------------


def test_missing_value_is_skipped() -> None:
    resource = observation(MG, None, "mg/dL", obs_id="no-value")
    read = read_observation(model(resource), shipped())
    assert isinstance(read, SkippedResult)
    assert read.reason == "no numeric valueQuantity"
    silent("hypomagnesemia", labs=[resource])


def test_data_absent_reason_is_skipped() -> None:
    resource = observation(MG, None, "mg/dL", obs_id="absent", data_absent=True)
    assert "valueQuantity" not in resource
    read = read_observation(model(resource), shipped())
    assert isinstance(read, SkippedResult)
    assert read.reason == "no numeric valueQuantity"
    facts = make_facts(labs=[resource])
    assert [s.resource_id for s in facts.skipped] == ["absent"]


@pytest.mark.parametrize("value", ["1.0", True, None])
def test_non_numeric_value_is_skipped(value: object) -> None:
    resource = mg(1.0)
    resource["valueQuantity"]["value"] = value
    assert isinstance(read_observation(model(resource), shipped()), SkippedResult)


def test_value_string_with_a_unit_is_read() -> None:
    # 4.7: v1 skipped every valueString; a comparator, a number and a unit are read now
    # (every shape is in test_value_strings.py).
    resource = mg(1.0)
    del resource["valueQuantity"]
    resource["valueString"] = "<0.5 mmol/L"
    read = read_observation(model(resource), shipped())
    assert isinstance(read, LabResult)
    assert (read.comparator, read.number, read.unit, read.canonical) == ("<", "0.5", "mmol/L", 0.5)


def test_observation_outside_every_value_set_is_ignored_not_skipped() -> None:
    glucose = observation("2345-7", 40, "mg/dL")
    assert read_observation(model(glucose), shipped()) is None
    facts = make_facts(labs=[glucose])
    assert facts.skipped == ()


def test_loinc_code_under_another_system_is_not_matched() -> None:
    resource = observation(MG, 1.0, "mg/dL", code_system="http://lab.example.org/codes")
    assert read_observation(model(resource), shipped()) is None


# --- codes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "analyte"),
    [
        (mg(0.4, "mmol/L", code="2601-3"), "magnesium"),
        (potassium(3.1, code=K_BLOOD), "potassium"),
        (calcium(8.0, code=CA_BLOOD), "calcium"),
        (calcium(8.0, code="2000-8"), "calcium"),
    ],
    ids=["mg-serum-molar", "k-blood", "ca-blood", "ca-2000-8"],
)
def test_blood_and_alternative_codes_count(resource: dict[str, object], analyte: str) -> None:
    read = read_observation(model(resource), shipped())
    assert isinstance(read, LabResult)
    assert read.analyte == analyte


@pytest.mark.parametrize(
    "resource",
    [mg(1.0, "mg/dL", code=MG_BLOOD), mg(0.45, "mmol/L", code=MG_BLOOD_MOLAR)],
    ids=["mg-blood-mass-21377-7", "mg-blood-molar-2593-2"],
)
def test_whole_blood_mg_is_not_total_mg(resource: dict[str, object]) -> None:
    # 4.7: blood-gas analysers report ionized Mg (normal about 0.45-0.6 mmol/L) under the
    # whole-blood codes; read as total Mg it would look critically low. Out of the default
    # value set: not a result, not a skipped one, no card.
    assert read_observation(model(resource), shipped()) is None
    facts = make_facts(labs=[resource])
    assert (list(facts.results("magnesium")), facts.current, facts.skipped) == ([], {}, ())
    assert fired_topics(labs=[resource]) == {}


# --- newest wins ----------------------------------------------------------------------------


def test_newer_normal_result_wins_over_older_low() -> None:
    silent("hypomagnesemia", labs=[mg(1.0, days_ago=5), mg(2.0, days_ago=1)])
    silent("hypomagnesemia", labs=[mg(2.0, days_ago=1), mg(1.0, days_ago=5)])


def test_newer_low_result_wins_over_older_normal() -> None:
    for labs in (
        [mg(2.0, days_ago=5), mg(1.0, days_ago=1)],
        [mg(1.0, days_ago=1), mg(2.0, days_ago=5)],
    ):
        finding = fired("hypomagnesemia", labs=labs)
        assert finding.values["mg"] == "1.0 mg/dL"
        assert finding.values["mg_date"] == "2026-11-19"


def test_newest_wins_across_unit_families() -> None:
    labs = [mg(0.9, "mmol/L", days_ago=3), mg(1.1, "mg/dL", days_ago=1)]
    assert fired("hypomagnesemia", labs=labs).indicator == "critical"
    labs = [mg(0.3, "mmol/L", days_ago=1), mg(2.2, "mg/dL", days_ago=3)]
    assert fired("hypomagnesemia", labs=labs).values["mg"] == "0.3 mmol/L"


def test_same_day_newer_time_wins() -> None:
    labs = [
        observation(MG, 1.0, "mg/dL", effective="2026-11-19T06:00:00Z"),
        observation(MG, 2.0, "mg/dL", effective="2026-11-19T18:00:00Z"),
    ]
    silent("hypomagnesemia", labs=labs)


# --- duplicates -----------------------------------------------------------------------------


def test_duplicate_id_is_counted_once() -> None:
    low = mg(1.0, obs_id="dup")
    facts = make_facts(labs=[low, dict(low), dict(low)])
    assert len(facts.results("magnesium")) == 1
    assert len(facts.mg_trend) == 1


def test_duplicate_ids_do_not_make_a_trend() -> None:
    # Three copies of two results are still two results: no mg-declining (needs 3).
    first, last = mg(2.4, days_ago=60, obs_id="a"), mg(1.8, days_ago=2, obs_id="b")
    why = silent("mg-declining", labs=[first, last, first, last, first], meds=[rx("tacrolimus")])
    assert "2 Mg results" in why


def test_same_id_across_prefetch_keys_is_counted_once() -> None:
    low = mg(1.0, obs_id="same")
    facts = build_facts(
        hook="patient-view",
        context={"patientId": "pat-1"},
        resources={
            "observations": [model(low)],
            "magnesium": [model(low)],
            "patient": [model(patient())],
        },
        draft_orders=[],
        medications={},
        content=shipped(),
        now=FIXED_NOW,
    )
    assert len(facts.results("magnesium")) == 1


# --- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("effective", "day"),
    [
        ("2026-11-18", "2026-11-18"),
        ("2026-11-18T08:00:00Z", "2026-11-18"),
        ("2026-11-18T08:00:00.123Z", "2026-11-18"),
        ("2026-11-18T08:00:00+01:00", "2026-11-18"),
        ("2026-11-18T23:30:00-05:00", "2026-11-19"),  # 04:30 UTC the next day
        ("2026-11-18T08:00:00", "2026-11-18"),  # no zone: read as UTC
    ],
)
def test_date_shapes(effective: str, day: str) -> None:
    resource = observation(MG, 1.0, "mg/dL", effective=effective)
    finding = fired("hypomagnesemia", labs=[resource])
    assert finding.values["mg_date"] == day


def test_offset_is_converted_before_the_window_check() -> None:
    # 2026-10-21T13:00+02:00 is 11:00 UTC: one hour older than the 30-day edge.
    silent(
        "hypomagnesemia",
        labs=[observation(MG, 1.0, "mg/dL", effective="2026-10-21T13:00:00+02:00")],
    )
    fired(
        "hypomagnesemia",
        labs=[observation(MG, 1.0, "mg/dL", effective="2026-10-21T13:00:00-02:00")],
    )


@pytest.mark.parametrize("effective", ["2026-11", "2026", "yesterday"])
def test_partial_or_junk_date_is_skipped(effective: str) -> None:
    resource = observation(MG, 1.0, "mg/dL", effective=effective)
    read = read_observation(model(resource), shipped())
    assert isinstance(read, SkippedResult)
    assert read.reason == "no effective date"


def test_effective_period_and_issued_are_fallbacks() -> None:
    period = mg(1.0)
    del period["effectiveDateTime"]
    period["effectivePeriod"] = {"start": "2026-11-17T07:00:00Z"}
    assert fired("hypomagnesemia", labs=[period]).values["mg_date"] == "2026-11-17"
    issued = mg(1.0)
    del issued["effectiveDateTime"]
    issued["issued"] = "2026-11-16T07:00:00Z"
    assert fired("hypomagnesemia", labs=[issued]).values["mg_date"] == "2026-11-16"


def test_nothing_relevant_means_no_card() -> None:
    facts = make_facts(labs=[], meds=[rx("amlodipine")])
    assert [t for t, o in outcomes(facts).items() if o.fired] == []
    assert evaluate("hypomagnesemia").why == "no Mg result in the last 30 days"
