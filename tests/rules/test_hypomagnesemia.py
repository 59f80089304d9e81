"""hypomagnesemia: the three tiers, what each card quotes and suggests, and its context notes."""

from __future__ import annotations

import pytest

from cds_service.rules import Suggestion
from tests.facts.builders import (
    creatinine,
    draft,
    egfr,
    fired,
    mg,
    patient,
    rx,
    silent,
)

HOOKS = ("patient-view", "order-select", "order-sign")


@pytest.mark.parametrize("hook", HOOKS)
def test_critical_tier(hook: str) -> None:
    drafts = [draft("amlodipine")] if hook != "patient-view" else []
    finding = fired("hypomagnesemia", hook, labs=[mg(1.1, "mg/dL", 2)], drafts=drafts)
    assert finding.indicator == "critical"
    assert finding.values["mg"] == "1.1 mg/dL"
    assert finding.values["mg_date"] == "2026-11-18"
    assert finding.values["threshold"] == "1.2 mg/dL"
    assert finding.suggestions == (
        Suggestion("lab", "magnesium", "Recheck Mg, K, Ca and creatinine in 6-12 h"),
        Suggestion("medication", "iv_magnesium"),
    )


def test_warning_tier() -> None:
    finding = fired("hypomagnesemia", labs=[mg(0.62, "mmol/L")])
    assert finding.indicator == "warning"
    assert finding.values["mg"] == "0.62 mmol/L"
    assert finding.values["threshold"] == "0.66 mmol/L"
    assert finding.notes == ()
    assert finding.suggestions == (
        Suggestion("lab", "magnesium", "Recheck Mg in 1-2 weeks"),
        Suggestion("medication", "oral_magnesium"),
    )


@pytest.mark.parametrize(
    ("drug", "cni"), [("tacrolimus", "tacrolimus"), ("cyclosporine", "cyclosporine")]
)
def test_info_tier_on_a_cni(drug: str, cni: str) -> None:
    finding = fired("hypomagnesemia", labs=[mg(1.65, "mg/dL")], meds=[rx(drug)])
    assert finding.indicator == "info"
    assert finding.values["mg"] == "1.65 mg/dL"
    assert finding.values["threshold"] == "1.7 mg/dL"
    assert finding.values["cni"] == cni
    assert "on_cni" in finding.notes
    # Info: keep supplementing; no recheck order, an oral Mg only if not already taking one.
    assert finding.suggestions == (Suggestion("medication", "oral_magnesium"),)


def test_info_tier_on_both_cnis_names_both() -> None:
    finding = fired(
        "hypomagnesemia", labs=[mg(0.68, "mmol/L")], meds=[rx("tacrolimus"), rx("cyclosporine")]
    )
    assert finding.values["cni"] == "tacrolimus and cyclosporine"


def test_info_tier_not_off_a_cni() -> None:
    why = silent("hypomagnesemia", labs=[mg(0.68, "mmol/L")], meds=[rx("omeprazole")])
    assert "not on a CNI" in why


def test_a_stopped_cni_is_not_a_cni() -> None:
    silent("hypomagnesemia", labs=[mg(0.68, "mmol/L")], meds=[rx("tacrolimus", status="stopped")])


def test_a_cni_being_ordered_counts_as_on_a_cni() -> None:
    finding = fired(
        "hypomagnesemia", "order-sign", labs=[mg(0.68, "mmol/L")], drafts=[draft("tacrolimus")]
    )
    assert finding.indicator == "info"


def test_a_cni_in_an_unselected_draft_is_context_in_order_select() -> None:
    tac = draft("tacrolimus", req_id="tac")
    other = draft("amlodipine", req_id="aml")
    finding = fired(
        "hypomagnesemia",
        "order-select",
        labs=[mg(0.68, "mmol/L")],
        drafts=[tac, other],
        selections=["MedicationRequest/aml"],
    )
    assert finding.indicator == "info"


def test_on_cni_critical_and_warning_keep_their_tier() -> None:
    assert fired("hypomagnesemia", labs=[mg(1.0)], meds=[rx("tacrolimus")]).indicator == "critical"
    assert fired("hypomagnesemia", labs=[mg(1.5)], meds=[rx("tacrolimus")]).indicator == "warning"


def test_no_oral_suggestion_when_already_taking_oral_mg() -> None:
    finding = fired("hypomagnesemia", labs=[mg(1.5)], meds=[rx("mg_oxide")])
    assert finding.indicator == "warning"
    assert [s.key for s in finding.suggestions] == ["magnesium"]


def test_no_medication_suggestion_when_mg_is_being_ordered() -> None:
    finding = fired("hypomagnesemia", "order-sign", labs=[mg(1.0)], drafts=[draft("mg_sulfate")])
    assert finding.indicator == "critical"
    assert [s.kind for s in finding.suggestions] == ["lab"]


def test_rows_are_the_trend_newest_first() -> None:
    labs = [mg(2.0, days_ago=90), mg(1.8, days_ago=60), mg(1.4, days_ago=2)]
    finding = fired("hypomagnesemia", labs=labs)
    assert [(r.value, r.day) for r in finding.rows] == [
        ("1.4 mg/dL (0.58 mmol/L)", "2026-11-18"),
        ("1.8 mg/dL (0.74 mmol/L)", "2026-09-21"),
        ("2 mg/dL (0.82 mmol/L)", "2026-08-22"),
    ]


# --- context notes (in every tier) ----------------------------------------------------------


@pytest.mark.parametrize("value", [1.0, 1.5, 1.65])  # critical, warning, info (on tacrolimus)
def test_context_notes_in_every_tier(value: float) -> None:
    finding = fired(
        "hypomagnesemia",
        labs=[mg(value), egfr(22)],
        meds=[
            rx("tacrolimus"),
            rx("omeprazole"),
            rx("furosemide"),
            rx("gentamicin"),
            rx("digoxin"),
        ],
    )
    assert finding.notes == (
        "kidney",
        "egfr_low",
        "on_cni",
        "ppi",
        "diuretic",
        "other_wasting",
        "digoxin",
    )
    assert finding.values["egfr"] == "22 mL/min/1.73 m2"
    assert finding.values["ppi"] == "Omeprazole 20 MG Delayed Release Oral Capsule"
    assert finding.values["diuretic"] == "Furosemide 20 MG Oral Tablet"
    assert finding.values["other_wasting"] == "gentamicin"
    assert finding.values["digoxin"] == "Digoxin 0.125 MG Oral Tablet"


@pytest.mark.parametrize(
    ("drug", "note"),
    [
        ("omeprazole", "ppi"),
        ("furosemide", "diuretic"),
        ("hctz", "diuretic"),
        ("gentamicin", "other_wasting"),
        ("sirolimus", "other_wasting"),
        ("digoxin", "digoxin"),
    ],
)
def test_each_context_note_alone(drug: str, note: str) -> None:
    finding = fired("hypomagnesemia", labs=[mg(1.5)], meds=[rx(drug)])
    assert finding.notes == (note,)


def test_context_note_from_a_drug_being_ordered() -> None:
    finding = fired("hypomagnesemia", "order-sign", labs=[mg(1.5)], drafts=[draft("furosemide")])
    assert "diuretic" in finding.notes


def test_egfr_low_note_from_computed_egfr() -> None:
    # Female 80 y, Scr 2.0 mg/dL: 142 x (2.0/0.7)^-1.2 x 0.9938^80 x 1.012 = 24.8.
    finding = fired(
        "hypomagnesemia", labs=[mg(1.5), creatinine(2.0)], pat=patient("1946-02-01", "female")
    )
    assert "egfr_low" in finding.notes
    assert finding.values["egfr"] == "25 mL/min/1.73 m2"


def test_egfr_not_low_has_kidney_note_only() -> None:
    finding = fired("hypomagnesemia", labs=[mg(1.5), egfr(60)])
    assert finding.notes == ("kidney",)


def test_cni_persistent_low_despite_supplementation() -> None:
    labs = [mg(1.5, days_ago=60), mg(1.8, days_ago=30), mg(1.6, days_ago=2)]
    finding = fired("hypomagnesemia", labs=labs, meds=[rx("tacrolimus"), rx("mg_oxide")])
    assert finding.indicator == "info"
    assert "cni_persistent" in finding.notes
    assert finding.values["low_count"] == 2
    assert finding.values["low_since"] == "2026-09-21"
    assert finding.values["supplements"] == "Magnesium Oxide 400 MG Oral Tablet"


def test_cni_persistent_needs_a_supplement() -> None:
    labs = [mg(1.5, days_ago=60), mg(1.6, days_ago=2)]
    finding = fired("hypomagnesemia", labs=labs, meds=[rx("tacrolimus")])
    assert "cni_persistent" not in finding.notes


def test_cni_persistent_needs_two_low_results() -> None:
    labs = [mg(2.0, days_ago=60), mg(1.6, days_ago=2)]
    finding = fired("hypomagnesemia", labs=labs, meds=[rx("tacrolimus"), rx("mg_oxide")])
    assert "cni_persistent" not in finding.notes


def test_cni_persistent_not_off_a_cni() -> None:
    labs = [mg(1.5, days_ago=60), mg(1.5, days_ago=2)]
    finding = fired("hypomagnesemia", labs=labs, meds=[rx("mg_oxide")])
    assert "cni_persistent" not in finding.notes
    assert "on_cni" not in finding.notes
