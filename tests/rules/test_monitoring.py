"""mg-monitoring-gap, mg-declining and mg-digoxin."""

from __future__ import annotations

import pytest

from cds_service.rules import Suggestion
from tests.facts.builders import (
    MG,
    creatinine,
    draft,
    egfr,
    fired,
    mg,
    observation,
    patient,
    rx,
    shipped,
    silent,
)

MG_LAB = Suggestion("lab", ("magnesium",), "Serum magnesium on a calcineurin inhibitor")

# --- mg-monitoring-gap ----------------------------------------------------------------------


def test_formulary_mg_lab_is_loinc_19123_9() -> None:
    entry = shipped().formulary.lab_orders["magnesium"]
    assert (entry.system, entry.code) == ("http://loinc.org", "19123-9")


def test_gap_of_more_than_42_days_on_an_established_cni_is_info() -> None:
    finding = fired(
        "mg-monitoring-gap",
        labs=[mg(2.0, days_ago=43)],
        meds=[rx("tacrolimus", authored_days_ago=300)],
    )
    assert finding.indicator == "info"
    assert finding.values["cni"] == "tacrolimus"
    assert finding.values["reason"] == "gap"
    assert finding.values["being_started"] is False
    assert finding.values["window"] == 42  # the first year of the CNI
    assert finding.values["cni_start"] == "2026-01-24"
    assert finding.values["last_mg"] == "2.0 mg/dL"
    assert finding.values["last_mg_date"] == "2026-10-08"
    assert finding.values["last_mg_age_days"] == 43
    assert finding.suggestions == (MG_LAB,)


def test_gap_window_edge() -> None:
    meds = [rx("tacrolimus", authored_days_ago=300)]
    exactly_42 = observation(MG, 2.0, "mg/dL", effective="2026-10-09T12:00:00Z")
    silent("mg-monitoring-gap", labs=[exactly_42], meds=meds)
    just_over = observation(MG, 2.0, "mg/dL", effective="2026-10-09T11:00:00Z")
    fired("mg-monitoring-gap", labs=[just_over], meds=meds)


def test_recent_mg_on_an_established_cni_does_not_fire() -> None:
    why = silent("mg-monitoring-gap", labs=[mg(2.0, days_ago=20)], meds=[rx("tacrolimus")])
    assert "within 42 days" in why


def test_established_cni_with_no_mg_at_all_is_info() -> None:
    finding = fired("mg-monitoring-gap", meds=[rx("cyclosporine", authored_days_ago=300)])
    assert finding.indicator == "info"
    assert finding.values["last_mg"] == ""
    assert finding.values["cni"] == "cyclosporine"


def test_a_non_usable_mg_does_not_close_the_gap() -> None:
    finding = fired(
        "mg-monitoring-gap",
        labs=[mg(2.0, days_ago=5, status="entered-in-error")],
        meds=[rx("tacrolimus", authored_days_ago=300)],
    )
    assert finding.values["last_mg"] == ""


def test_new_start_with_no_mg_since_the_start_is_info() -> None:
    finding = fired(
        "mg-monitoring-gap",
        labs=[mg(2.0, days_ago=20)],
        meds=[rx("tacrolimus", authored_days_ago=10)],
    )
    # A recent start checked only before it stays routine (info).
    assert finding.indicator == "info"
    assert finding.values["reason"] == "new_start"
    assert finding.values["being_started"] is False
    assert finding.values["cni_start"] == "2026-11-10"
    assert finding.values["last_mg_date"] == "2026-10-31"


def test_new_start_with_an_mg_since_the_start_does_not_fire() -> None:
    silent(
        "mg-monitoring-gap",
        labs=[mg(2.0, days_ago=5)],
        meds=[rx("tacrolimus", authored_days_ago=10)],
    )


def test_new_start_with_no_mg_at_all_is_a_warning() -> None:
    finding = fired("mg-monitoring-gap", meds=[rx("tacrolimus", authored_days_ago=5)])
    assert finding.indicator == "warning"
    assert finding.values["reason"] == "new_start"
    assert finding.values["last_mg"] == ""


@pytest.mark.parametrize(("days", "new"), [(13, True), (15, False)])
def test_new_start_window_is_14_days(days: int, new: bool) -> None:
    # Mg drawn 20 days ago, before the start: only a new start makes that a gap.
    labs = [mg(2.0, days_ago=20)]
    meds = [rx("tacrolimus", authored_days_ago=days)]
    if new:
        assert fired("mg-monitoring-gap", labs=labs, meds=meds).values["reason"] == "new_start"
    else:
        silent("mg-monitoring-gap", labs=labs, meds=meds)


def test_cni_start_uses_the_earliest_active_cni() -> None:
    # A new cyclosporine order does not make a long-standing tacrolimus patient a new start.
    silent(
        "mg-monitoring-gap",
        labs=[mg(2.0, days_ago=20)],
        meds=[rx("tacrolimus", authored_days_ago=300), rx("cyclosporine", authored_days_ago=3)],
    )


def test_stopped_cni_does_not_fire() -> None:
    silent("mg-monitoring-gap", meds=[rx("tacrolimus", status="stopped")])


def test_order_select_cni_selected_new_start_without_any_mg_is_a_warning() -> None:
    finding = fired("mg-monitoring-gap", "order-select", drafts=[draft("tacrolimus", req_id="t")])
    assert finding.indicator == "warning"
    assert finding.values["reason"] == "new_start"
    assert finding.values["being_started"] is True
    # A CNI being started starts at the moment of the request (4.8).
    assert finding.values["cni_start"] == "2026-11-20"
    assert finding.order_ids == ("MedicationRequest/t",)


def test_order_select_new_start_with_an_mg_before_it_is_a_warning() -> None:
    # The Mg 10 days ago predates the start (now): the first-week check still applies (4.8).
    finding = fired(
        "mg-monitoring-gap",
        "order-select",
        labs=[mg(2.0, days_ago=10)],
        drafts=[draft("tacrolimus")],
    )
    assert finding.indicator == "warning"
    assert finding.values["last_mg_date"] == "2026-11-10"


def test_order_select_renewal_with_a_recent_mg_does_not_fire() -> None:
    why = silent(
        "mg-monitoring-gap",
        "order-select",
        labs=[mg(2.0, days_ago=10)],
        meds=[rx("tacrolimus", authored_days_ago=300)],
        drafts=[draft("tacrolimus")],
    )
    assert why == "on a CNI, last Mg 2026-11-10 is within 42 days"


def test_order_select_renewal_of_an_established_cni_with_a_gap() -> None:
    finding = fired(
        "mg-monitoring-gap",
        "order-select",
        labs=[mg(2.0, days_ago=60)],
        meds=[rx("tacrolimus", authored_days_ago=300)],
        drafts=[draft("tacrolimus")],
    )
    assert finding.indicator == "info"
    assert finding.values["reason"] == "gap"
    assert finding.values["being_started"] is False


def test_order_select_cni_not_selected_does_not_fire() -> None:
    why = silent(
        "mg-monitoring-gap",
        "order-select",
        meds=[rx("tacrolimus", authored_days_ago=300)],
        drafts=[draft("tacrolimus", req_id="t"), draft("antacid", req_id="a")],
        selections=["MedicationRequest/a"],
    )
    assert why == "no CNI selected"


def test_monitoring_gap_not_on_order_sign() -> None:
    assert (
        silent(
            "mg-monitoring-gap", "order-sign", meds=[rx("tacrolimus")], drafts=[draft("tacrolimus")]
        )
        == "not evaluated on order-sign"
    )


# --- mg-declining ---------------------------------------------------------------------------


def test_fall_of_20_percent_over_3_results_on_a_cni() -> None:
    labs = [mg(2.2, days_ago=90), mg(2.0, days_ago=45), mg(1.76, days_ago=2)]
    finding = fired("mg-declining", labs=labs, meds=[rx("tacrolimus")])
    assert finding.indicator == "info"
    assert finding.values == {
        "cni": "tacrolimus",
        "first_mg": "2.2 mg/dL",
        "mg": "1.76 mg/dL",
        "decline_pct": 20,
        "span_days": 88,
        "result_count": 3,
        "floor": "1.95 mg/dL",
        "converted": False,
    }
    assert finding.suggestions == (
        Suggestion("lab", ("magnesium",), "Recheck Mg sooner: falling on a calcineurin inhibitor"),
    )
    assert [r.day for r in finding.rows] == ["2026-11-18", "2026-10-06", "2026-08-22"]


def test_fall_just_under_20_percent_does_not_fire() -> None:
    labs = [mg(2.2, days_ago=90), mg(2.0, days_ago=45), mg(1.78, days_ago=2)]
    assert "-19%" in silent("mg-declining", labs=labs, meds=[rx("tacrolimus")])


def test_two_results_are_not_a_trend() -> None:
    labs = [mg(2.4, days_ago=60), mg(1.8, days_ago=2)]
    why = silent("mg-declining", labs=labs, meds=[rx("tacrolimus")])
    assert why == "2 Mg results in the trend window, 3 needed"


def test_results_outside_the_trend_window_do_not_count() -> None:
    labs = [mg(2.4, days_ago=200), mg(2.0, days_ago=60), mg(1.8, days_ago=2)]
    silent("mg-declining", labs=labs, meds=[rx("tacrolimus")])


def test_already_low_is_left_to_hypomagnesemia() -> None:
    labs = [mg(2.4, days_ago=90), mg(2.0, days_ago=45), mg(1.65, days_ago=2)]
    why = silent("mg-declining", labs=labs, meds=[rx("tacrolimus")])
    assert "already low" in why
    assert fired("hypomagnesemia", labs=labs, meds=[rx("tacrolimus")]).indicator == "info"


def test_declining_not_off_a_cni() -> None:
    labs = [mg(2.4, days_ago=90), mg(2.1, days_ago=45), mg(1.8, days_ago=2)]
    assert silent("mg-declining", labs=labs) == "not on a CNI"


def test_declining_needs_a_current_mg() -> None:
    labs = [mg(2.4, days_ago=150), mg(2.1, days_ago=100), mg(1.8, days_ago=40)]
    assert silent("mg-declining", labs=labs, meds=[rx("tacrolimus")]) == "no current Mg"


def test_declining_across_unit_families_uses_mmol() -> None:
    # 0.95 mmol/L -> 1.8 mg/dL (0.741 mmol/L): a 22% fall.
    labs = [mg(0.95, "mmol/L", days_ago=90), mg(0.85, "mmol/L", days_ago=45), mg(1.8, days_ago=2)]
    finding = fired("mg-declining", labs=labs, meds=[rx("cyclosporine")])
    assert finding.values["decline_pct"] == 22
    # Mixed unit families: both quoted in mmol/L, so one sentence never mixes them.
    assert finding.values["first_mg"] == "0.95 mmol/L"
    assert finding.values["mg"] == "0.74 mmol/L"
    assert finding.values["converted"] is True
    assert finding.values["floor"] == "1.95 mg/dL"  # the latest result's own family


def test_rising_mg_does_not_fire() -> None:
    # Below the decline floor, but rising: 1.5 -> 1.9 mg/dL.
    labs = [mg(1.5, days_ago=90), mg(1.7, days_ago=45), mg(1.9, days_ago=2)]
    assert silent("mg-declining", labs=labs, meds=[rx("tacrolimus")]) == (
        "Mg changed +27% across the trend window"
    )


def test_zero_first_value_does_not_crash() -> None:
    labs = [mg(0, "mmol/L", days_ago=90), mg(0.8, "mmol/L", days_ago=45), mg(0.8, "mmol/L")]
    silent("mg-declining", labs=labs, meds=[rx("tacrolimus")])


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_declining_only_on_patient_view(hook: str) -> None:
    labs = [mg(2.2, days_ago=90), mg(2.0, days_ago=45), mg(1.76, days_ago=2)]
    silent("mg-declining", hook, labs=labs, meds=[rx("tacrolimus")], drafts=[draft("tacrolimus")])


# --- mg-digoxin -----------------------------------------------------------------------------


def test_active_digoxin_with_mg_below_target() -> None:
    finding = fired("mg-digoxin", labs=[mg(1.9)], meds=[rx("digoxin")])
    assert finding.indicator == "warning"
    assert finding.values == {
        "mg": "1.9 mg/dL",
        "mg_date": "2026-11-19",
        "target": "2.0 mg/dL",
        "target_both": "2 mg/dL (0.82 mmol/L)",
        "digoxin": "Digoxin 0.125 MG Oral Tablet",
        "egfr": "",
        "egfr_source": "",
    }
    assert finding.suggestions == ()
    assert finding.advice is not None
    assert finding.advice.action == "oral_start"
    assert finding.advice.suggestion == Suggestion("medication", ("oral_magnesium",))


def test_digoxin_card_quotes_kidney_function() -> None:
    finding = fired(
        "mg-digoxin",
        labs=[mg(1.9), creatinine(1.0)],
        meds=[rx("digoxin")],
        pat=patient("1976-01-15", "male"),
    )
    assert finding.notes == ("kidney",)
    assert finding.values["egfr"] == "92 mL/min/1.73 m2"
    low = fired("mg-digoxin", labs=[mg(1.9), egfr(20)], meds=[rx("digoxin")])
    assert low.notes == ("kidney",)


def test_digoxin_no_mg_suggestion_when_already_supplemented() -> None:
    finding = fired("mg-digoxin", labs=[mg(1.9)], meds=[rx("digoxin"), rx("mg_oxide")])
    assert finding.suggestions == ()
    assert finding.advice is not None
    assert finding.advice.action == "oral_more"
    assert finding.advice.suggestion is None


def test_digoxin_without_a_current_mg_does_not_fire() -> None:
    assert silent("mg-digoxin", meds=[rx("digoxin")]) == "digoxin, but no current Mg"
    silent("mg-digoxin", labs=[mg(1.5, days_ago=40)], meds=[rx("digoxin")])


def test_low_mg_without_digoxin_does_not_fire() -> None:
    silent("mg-digoxin", labs=[mg(1.9)], meds=[rx("digoxin", status="stopped")])


def test_order_select_digoxin_selected() -> None:
    finding = fired(
        "mg-digoxin", "order-select", labs=[mg(1.9)], drafts=[draft("digoxin", req_id="d")]
    )
    assert finding.order_ids == ("MedicationRequest/d",)
    silent("mg-digoxin", "order-select", labs=[mg(2.2)], drafts=[draft("digoxin")])


def test_order_select_digoxin_active_but_not_selected() -> None:
    assert (
        silent(
            "mg-digoxin",
            "order-select",
            labs=[mg(2.2)],
            meds=[rx("digoxin")],
            drafts=[draft("amlodipine")],
        )
        == "no digoxin selected"
    )


def test_digoxin_not_on_order_sign() -> None:
    silent(
        "mg-digoxin", "order-sign", labs=[mg(2.2)], meds=[rx("digoxin")], drafts=[draft("digoxin")]
    )
