"""mg-refractory-hypokalemia and mg-refractory-hypocalcemia."""

from __future__ import annotations

import pytest

from cds_service.rules import Suggestion
from tests.facts.builders import (
    albumin,
    calcium,
    draft,
    evaluate,
    fired,
    ionized_ca,
    mg,
    potassium,
    rx,
    silent,
)

# Mg is checked alongside treating K or Ca, never before it (4.1).
CHECK_MG = Suggestion("lab", ("magnesium",), "Check Mg now, alongside treating K or Ca")
ORAL_MG = Suggestion("medication", ("oral_magnesium",))
IV_MG = Suggestion("medication", ("iv_magnesium",))

# --- refractory hypokalemia -----------------------------------------------------------------


def test_low_k_with_low_mg_is_a_warning() -> None:
    finding = fired("mg-refractory-hypokalemia", labs=[potassium(3.2), mg(1.5)])
    assert finding.indicator == "warning"
    assert finding.values["k"] == "3.2 mmol/L"
    assert finding.values["mg"] == "1.5 mg/dL"
    assert finding.values["treat_now"] is False
    # The magnesium order comes with the shared advice, rendered with the card.
    assert finding.suggestions == ()
    assert finding.advice is not None
    assert finding.advice.action == "oral_start"
    assert finding.advice.suggestion == ORAL_MG
    assert [r.label for r in finding.rows] == ["Magnesium", "Potassium"]


def test_k_below_3_with_low_mg_is_critical() -> None:
    finding = fired("mg-refractory-hypokalemia", labs=[potassium(2.8), mg(1.1)])
    assert finding.indicator == "critical"
    assert finding.values["treat_now"] is True
    # Mg below the critical line: IV magnesium.
    assert finding.suggestions == ()
    assert finding.advice is not None
    assert finding.advice.action == "iv_give"
    assert finding.advice.suggestion == IV_MG


def test_k_below_3_without_a_current_mg_is_a_warning_suggesting_an_mg_lab() -> None:
    finding = fired("mg-refractory-hypokalemia", labs=[potassium(2.8)])
    assert finding.indicator == "warning"
    assert finding.values["mg"] == ""
    assert finding.values["treat_now"] is True
    assert finding.suggestions == (CHECK_MG,)
    assert finding.advice is None


def test_a_stale_mg_counts_as_no_current_mg() -> None:
    finding = fired("mg-refractory-hypokalemia", labs=[potassium(3.1), mg(2.0, days_ago=45)])
    assert finding.values["mg"] == ""
    assert finding.suggestions == (CHECK_MG,)


def test_low_k_with_normal_mg_does_not_fire() -> None:
    why = silent("mg-refractory-hypokalemia", labs=[potassium(2.8), mg(1.9)])
    assert "is low but Mg 1.9 mg/dL is not" in why


def test_k_between_info_and_low_mg_lines_does_not_count_as_low_mg() -> None:
    # 0.68 mmol/L is below the CNI target but not below 0.66: Mg is not "low" for this card.
    silent("mg-refractory-hypokalemia", labs=[potassium(3.2), mg(0.68, "mmol/L")])


def test_stale_low_k_does_not_fire() -> None:
    silent("mg-refractory-hypokalemia", labs=[potassium(2.8, days_ago=31), mg(1.1)])


def test_persistently_low_k_despite_an_active_k_supplement() -> None:
    labs = [potassium(3.1, days_ago=20), potassium(3.3, days_ago=10), potassium(3.2), mg(1.5)]
    finding = fired("mg-refractory-hypokalemia", labs=labs, meds=[rx("kcl")])
    assert finding.values["persistent"] is True
    assert finding.values["low_count"] == 3
    assert finding.values["low_since"] == "2026-10-31"
    assert finding.values["k_supplements"] == (
        "Potassium Chloride 20 MEQ Extended Release Oral Tablet"
    )


def test_not_persistent_without_a_k_supplement_or_with_a_single_low_k() -> None:
    labs = [potassium(3.1, days_ago=20), potassium(3.2), mg(1.5)]
    assert fired("mg-refractory-hypokalemia", labs=labs).values["persistent"] is False
    single = [potassium(4.0, days_ago=20), potassium(3.2), mg(1.5)]
    finding = fired("mg-refractory-hypokalemia", labs=single, meds=[rx("kcl")])
    assert finding.values["persistent"] is False


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_order_hooks_need_a_k_supplement_being_ordered(hook: str) -> None:
    labs = [potassium(3.2), mg(1.5)]
    kcl = draft("kcl", req_id="k1")
    finding = fired("mg-refractory-hypokalemia", hook, labs=labs, drafts=[kcl])
    assert finding.order_ids == ("MedicationRequest/k1",)
    why = silent("mg-refractory-hypokalemia", hook, labs=labs, drafts=[draft("amlodipine")])
    assert why == "no potassium supplement being ordered"


def test_order_select_k_supplement_not_selected_does_not_fire() -> None:
    silent(
        "mg-refractory-hypokalemia",
        "order-select",
        labs=[potassium(3.2), mg(1.5)],
        drafts=[draft("kcl", req_id="k1"), draft("amlodipine", req_id="a1")],
        selections=["MedicationRequest/a1"],
    )


def test_no_mg_suggestion_while_mg_is_being_ordered() -> None:
    finding = fired(
        "mg-refractory-hypokalemia",
        "order-sign",
        labs=[potassium(3.2), mg(1.5)],
        drafts=[draft("kcl"), draft("mg_oxide")],
    )
    assert finding.suggestions == ()


def test_on_cni_note() -> None:
    finding = fired(
        "mg-refractory-hypokalemia", labs=[potassium(3.2), mg(1.5)], meds=[rx("tacrolimus")]
    )
    assert finding.notes == ("on_cni",)
    assert finding.values["cni"] == "tacrolimus"


# --- refractory hypocalcemia ----------------------------------------------------------------


def test_low_ionized_ca_with_low_mg() -> None:
    finding = fired("mg-refractory-hypocalcemia", labs=[ionized_ca(1.02), mg(0.55, "mmol/L")])
    assert finding.indicator == "warning"
    assert finding.values["ca_label"] == "Ionized Ca"
    assert finding.values["ca"] == "1.02 mmol/L"
    assert finding.values["mg"] == "0.55 mmol/L"
    assert finding.values["treat_now"] is False  # 1.02 is not below the 1.0 critical line
    assert finding.suggestions == ()
    assert finding.advice is not None
    assert finding.advice.suggestion == ORAL_MG


def test_low_corrected_ca_with_critical_mg_suggests_iv() -> None:
    finding = fired("mg-refractory-hypocalcemia", labs=[calcium(7.2), albumin(3.8), mg(1.0)])
    assert finding.indicator == "warning"
    # The summary quotes the reported unit family only; the basis gives both.
    assert finding.values["ca"] == "7.4 mg/dL"  # 7.36 mg/dL
    assert finding.values["ca_basis"] == (
        "Corrected calcium (Payne) 7.4 mg/dL (1.84 mmol/L) from total Ca 7.2 mg/dL and "
        "albumin 3.8 g/dL (2026-11-19)."
    )
    assert finding.values["treat_now"] is True  # 7.36 mg/dL is below the 7.5 critical line
    assert finding.suggestions == ()
    assert finding.advice is not None
    assert finding.advice.suggestion == IV_MG


def test_low_ca_without_a_current_mg_suggests_an_mg_lab() -> None:
    finding = fired("mg-refractory-hypocalcemia", labs=[ionized_ca(1.02)])
    assert finding.values["mg"] == ""
    assert finding.suggestions == (CHECK_MG,)


def test_low_ca_with_normal_mg_does_not_fire() -> None:
    silent("mg-refractory-hypocalcemia", labs=[ionized_ca(1.02), mg(2.0)])


def test_no_calcium_does_not_fire() -> None:
    assert silent("mg-refractory-hypocalcemia", labs=[mg(1.0)]) == "no current calcium"


def test_greater_than_total_calcium_is_not_low() -> None:
    silent("mg-refractory-hypocalcemia", labs=[calcium(7.0, comparator=">"), mg(1.0)])


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_order_hooks_need_a_ca_supplement_being_ordered(hook: str) -> None:
    labs = [ionized_ca(1.02), mg(1.4)]
    finding = fired(
        "mg-refractory-hypocalcemia", hook, labs=labs, drafts=[draft("ca_carbonate", req_id="c1")]
    )
    assert finding.order_ids == ("MedicationRequest/c1",)
    why = silent("mg-refractory-hypocalcemia", hook, labs=labs, drafts=[draft("kcl")])
    assert why == "no calcium supplement being ordered"


def test_an_active_ca_supplement_on_patient_view_is_not_required() -> None:
    outcome = evaluate("mg-refractory-hypocalcemia", labs=[ionized_ca(1.02), mg(1.4)])
    assert outcome.fired
