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
    assert finding.values["stale"] is False
    # "Recheck Mg, K, Ca and creatinine" orders exactly those four labs (4.3).
    assert finding.suggestions == (
        Suggestion(
            "lab",
            ("magnesium", "potassium", "calcium", "creatinine"),
            "Recheck Mg, K, Ca and creatinine in 6-12 h",
        ),
    )
    assert finding.advice is not None
    assert finding.advice.action == "iv_give"
    assert finding.advice.suggestion == Suggestion("medication", ("iv_magnesium",))


def test_warning_tier() -> None:
    finding = fired("hypomagnesemia", labs=[mg(0.62, "mmol/L")])
    assert finding.indicator == "warning"
    assert finding.values["mg"] == "0.62 mmol/L"
    assert finding.values["threshold"] == "0.66 mmol/L"
    assert finding.notes == ()
    assert finding.suggestions == (Suggestion("lab", ("magnesium",), "Recheck Mg in 1-2 weeks"),)
    assert finding.advice is not None
    assert finding.advice.action == "oral_start"
    assert finding.advice.suggestion == Suggestion("medication", ("oral_magnesium",))


@pytest.mark.parametrize(
    ("drug", "cni"), [("tacrolimus", "tacrolimus"), ("cyclosporine", "cyclosporine")]
)
def test_info_tier_on_a_cni(drug: str, cni: str) -> None:
    finding = fired("hypomagnesemia", labs=[mg(1.65, "mg/dL")], meds=[rx(drug)])
    assert finding.indicator == "info"
    assert finding.values["mg"] == "1.65 mg/dL"
    assert finding.values["threshold"] == "1.7 mg/dL"
    assert finding.values["cni"] == cni
    assert finding.notes == ("on_cni",)
    # Info: no recheck order; not supplemented yet, so oral magnesium is started.
    assert finding.suggestions == ()
    assert finding.advice is not None
    assert finding.advice.action == "oral_start"
    assert finding.advice.suggestion == Suggestion("medication", ("oral_magnesium",))


def test_info_tier_on_both_cnis_names_both() -> None:
    finding = fired(
        "hypomagnesemia", labs=[mg(0.68, "mmol/L")], meds=[rx("tacrolimus"), rx("cyclosporine")]
    )
    assert finding.values["cni"] == "cyclosporine and tacrolimus"  # in name order


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
    # The CNI draft is context (the patient counts as on a CNI); the selected potassium order
    # makes the card relevant at order time (4.12).
    tac = draft("tacrolimus", req_id="tac")
    other = draft("kcl", req_id="k")
    finding = fired(
        "hypomagnesemia",
        "order-select",
        labs=[mg(0.68, "mmol/L")],
        drafts=[tac, other],
        selections=["MedicationRequest/k"],
    )
    assert finding.indicator == "info"
    assert finding.values["cni"] == "tacrolimus"
    # With only an unrelated order selected, the info tier stays quiet (4.12).
    unrelated = silent(
        "hypomagnesemia",
        "order-select",
        labs=[mg(0.68, "mmol/L")],
        drafts=[draft("tacrolimus", req_id="tac"), draft("amlodipine", req_id="aml")],
        selections=["MedicationRequest/aml"],
    )
    assert unrelated == "Mg 0.68 mmol/L is low (info) but no order being placed is about it"


def test_on_cni_critical_and_warning_keep_their_tier() -> None:
    assert fired("hypomagnesemia", labs=[mg(1.0)], meds=[rx("tacrolimus")]).indicator == "critical"
    assert fired("hypomagnesemia", labs=[mg(1.5)], meds=[rx("tacrolimus")]).indicator == "warning"


def test_no_oral_suggestion_when_already_taking_oral_mg() -> None:
    finding = fired("hypomagnesemia", labs=[mg(1.5)], meds=[rx("mg_oxide")])
    assert finding.indicator == "warning"
    assert [s.keys for s in finding.suggestions] == [("magnesium",)]
    assert finding.advice is not None
    assert finding.advice.action == "oral_more"
    assert finding.advice.suggestion is None


def test_no_medication_suggestion_when_mg_is_being_ordered() -> None:
    finding = fired("hypomagnesemia", "order-sign", labs=[mg(1.0)], drafts=[draft("mg_sulfate")])
    assert finding.indicator == "critical"
    assert [s.kind for s in finding.suggestions] == ["lab"]
    assert finding.advice is not None
    assert finding.advice.action == "iv_given"
    assert finding.advice.suggestion is None


def test_rows_are_the_trend_newest_first() -> None:
    labs = [mg(2.0, days_ago=90), mg(1.8, days_ago=60), mg(1.4, days_ago=2)]
    finding = fired("hypomagnesemia", labs=labs)
    assert [(r.value, r.day) for r in finding.rows] == [
        ("1.4 mg/dL (0.58 mmol/L)", "2026-11-18"),
        ("1.8 mg/dL (0.74 mmol/L)", "2026-09-21"),
        ("2.0 mg/dL (0.82 mmol/L)", "2026-08-22"),  # as the lab wrote it
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
    assert finding.notes == ("kidney", "on_cni", "ppi", "diuretic", "other_wasting", "digoxin")
    assert finding.values["egfr"] == "22 mL/min/1.73 m2"
    assert finding.values["egfr_source"] == "reported eGFR"
    # eGFR below 30 gates the magnesium advice itself (4.4), in every tier.
    assert finding.advice is not None
    assert "iv_cap" in finding.advice.lines
    assert finding.advice.suggestion is None
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


def test_reduced_dose_from_computed_egfr() -> None:
    # Female 80 y, Scr 2.0 mg/dL: 142 x (2.0/0.7)^-1.2 x 0.9938^80 x 1.012 = 24.8.
    finding = fired(
        "hypomagnesemia", labs=[mg(1.5), creatinine(2.0)], pat=patient("1946-02-01", "female")
    )
    assert finding.notes == ("kidney",)
    assert finding.values["egfr"] == "25 mL/min/1.73 m2"
    assert finding.values["egfr_source"] == "CKD-EPI 2021 from creatinine 2.0 mg/dL on 2026-11-19"
    assert finding.advice is not None
    assert finding.advice.action == "oral_reduced"
    assert finding.advice.lines == ("oral_reduced", "iv_cap")
    assert finding.advice.suggestion is None


def test_egfr_not_low_has_kidney_note_only() -> None:
    finding = fired("hypomagnesemia", labs=[mg(1.5), egfr(60)])
    assert finding.notes == ("kidney",)
    assert finding.advice is not None
    assert finding.advice.action == "oral_start"


def test_cni_persistent_low_despite_supplementation() -> None:
    # Three results below the warning line spanning 58 days, all on the supplement (4.3).
    labs = [mg(1.5, days_ago=60), mg(1.4, days_ago=30), mg(1.5, days_ago=2)]
    finding = fired("hypomagnesemia", labs=labs, meds=[rx("tacrolimus"), rx("mg_oxide")])
    assert finding.indicator == "warning"
    assert finding.notes == ("on_cni", "cni_persistent")
    assert finding.values["low_count"] == 3
    assert finding.values["low_since"] == "2026-09-21"
    assert finding.values["low_line"] == "1.6 mg/dL"
    assert finding.values["supplements"] == "Magnesium Oxide 400 MG Oral Tablet"


def test_cni_persistent_needs_a_supplement() -> None:
    labs = [mg(1.5, days_ago=60), mg(1.4, days_ago=30), mg(1.5, days_ago=2)]
    finding = fired("hypomagnesemia", labs=labs, meds=[rx("tacrolimus")])
    assert finding.notes == ("on_cni",)


def test_cni_persistent_needs_three_low_results() -> None:
    labs = [mg(2.0, days_ago=60), mg(1.4, days_ago=30), mg(1.5, days_ago=2)]
    finding = fired("hypomagnesemia", labs=labs, meds=[rx("tacrolimus"), rx("mg_oxide")])
    assert finding.notes == ("on_cni",)


def test_cni_persistent_not_off_a_cni() -> None:
    labs = [mg(1.5, days_ago=60), mg(1.4, days_ago=30), mg(1.5, days_ago=2)]
    finding = fired("hypomagnesemia", labs=labs, meds=[rx("mg_oxide")])
    assert finding.notes == ()
