"""Interactions at order time: antacid-tacrolimus, antacid-mycophenolate, spacing, Mg-wasting."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.rules import Suggestion
from tests.facts.builders import (
    DRUGS,
    draft,
    fired,
    med_request,
    medication,
    mg,
    rx,
    shipped,
    silent,
    tac_level,
)

ANTACID = DRUGS["antacid"][1]
TACROLIMUS = DRUGS["tacrolimus"][1]
MYCOPHENOLATE = DRUGS["mycophenolate"][1]

# --- antacid-tacrolimus ---------------------------------------------------------------------


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_antacid_ordered_with_active_tacrolimus_is_a_warning(hook: str) -> None:
    finding = fired(
        "antacid-tacrolimus",
        hook,
        labs=[tac_level(7.5, days_ago=20), tac_level(9.1, days_ago=5)],
        meds=[rx("tacrolimus", req_id="tac")],
        drafts=[draft("antacid", req_id="ant")],
    )
    assert finding.indicator == "warning"
    assert finding.values["antacid"] == ANTACID
    assert finding.values["tacrolimus"] == TACROLIMUS
    # The latest tacrolimus level is quoted.
    assert finding.values["tac_level"] == "9.1 ng/mL"
    assert finding.values["tac_level_date"] == "2026-11-15"
    assert finding.suggestions == (
        Suggestion(
            "lab",
            ("tacrolimus_trough",),
            "Tacrolimus trough after starting or stopping the antacid",
        ),
    )
    # The card is about the draft order only.
    assert finding.order_ids == ("MedicationRequest/ant",)


def test_tacrolimus_ordered_with_an_active_antacid_is_a_warning() -> None:
    finding = fired(
        "antacid-tacrolimus",
        "order-select",
        meds=[rx("antacid")],
        drafts=[draft("tacrolimus", req_id="t1")],
    )
    assert finding.indicator == "warning"
    assert finding.order_ids == ("MedicationRequest/t1",)
    assert finding.values["tac_level"] == ""


def test_order_sign_both_drafts() -> None:
    finding = fired(
        "antacid-tacrolimus",
        "order-sign",
        drafts=[draft("antacid", req_id="a"), draft("tacrolimus", req_id="t")],
    )
    assert finding.indicator == "warning"
    assert finding.order_ids == ("MedicationRequest/a", "MedicationRequest/t")


def test_order_select_antacid_selected_with_tacrolimus_in_an_unselected_draft() -> None:
    finding = fired(
        "antacid-tacrolimus",
        "order-select",
        drafts=[draft("antacid", req_id="a"), draft("tacrolimus", req_id="t")],
        selections=["MedicationRequest/a"],
    )
    assert finding.indicator == "warning"


def test_order_select_neither_selected_does_not_fire() -> None:
    why = silent(
        "antacid-tacrolimus",
        "order-select",
        drafts=[
            draft("antacid", req_id="a"),
            draft("tacrolimus", req_id="t"),
            draft("amlodipine", req_id="x"),
        ],
        selections=["MedicationRequest/x"],
    )
    assert why.endswith("neither is being ordered")


def test_patient_view_both_active_is_info() -> None:
    finding = fired(
        "antacid-tacrolimus",
        labs=[tac_level(11.2, days_ago=3)],
        meds=[rx("antacid"), rx("tacrolimus")],
    )
    assert finding.indicator == "info"
    assert finding.values["tac_level"] == "11.2 ng/mL"


def test_patient_view_only_one_active_does_not_fire() -> None:
    silent("antacid-tacrolimus", meds=[rx("antacid")])
    silent("antacid-tacrolimus", meds=[rx("tacrolimus")])


def test_stopped_tacrolimus_does_not_count() -> None:
    silent(
        "antacid-tacrolimus",
        "order-sign",
        meds=[rx("tacrolimus", status="stopped")],
        drafts=[draft("antacid")],
    )


def test_level_older_than_the_trend_window_is_not_quoted() -> None:
    finding = fired(
        "antacid-tacrolimus",
        "order-sign",
        labs=[tac_level(8.0, days_ago=200)],
        meds=[rx("tacrolimus")],
        drafts=[draft("antacid")],
    )
    assert finding.values["tac_level"] == ""


@pytest.mark.parametrize(
    "antacid",
    [
        med_request(text="Milk of Magnesia 400 mg/5 mL", status="draft"),
        med_request("999", "Mylanta Maximum Strength", status="draft"),
        med_request(medication_reference="Medication/m1", status="draft"),
        med_request(
            medication_reference="#c",
            contained=[medication("c", ingredients=[("6581", "magnesium hydroxide")])],
            status="draft",
        ),
    ],
    ids=["text", "brand-display", "referenced", "contained"],
)
def test_antacid_recognised_by_every_route(antacid: dict[str, Any]) -> None:
    finding = fired(
        "antacid-tacrolimus",
        "order-sign",
        meds=[med_request(text="Prograf 1 mg capsule")],
        drafts=[antacid],
        medications={"Medication/m1": medication("m1", code="237872")},
    )
    assert finding.values["tacrolimus"] == "Prograf 1 mg capsule"


# --- antacid-mycophenolate ------------------------------------------------------------------


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_antacid_with_mycophenolate_is_a_warning(hook: str) -> None:
    finding = fired(
        "antacid-mycophenolate", hook, meds=[rx("mycophenolate")], drafts=[draft("antacid")]
    )
    assert finding.indicator == "warning"
    assert finding.values == {"antacid": ANTACID, "mycophenolate": MYCOPHENOLATE}


def test_antacid_mycophenolate_patient_view_info() -> None:
    finding = fired("antacid-mycophenolate", meds=[rx("mycophenolate"), rx("antacid")])
    assert finding.indicator == "info"


def test_antacid_mycophenolate_neither_ordered() -> None:
    silent(
        "antacid-mycophenolate",
        "order-sign",
        meds=[rx("mycophenolate"), rx("antacid")],
        drafts=[draft("amlodipine")],
    )


def test_a_plain_mg_supplement_is_not_an_antacid() -> None:
    silent(
        "antacid-mycophenolate",
        "order-sign",
        meds=[rx("mycophenolate")],
        drafts=[draft("mg_oxide")],
    )
    silent("antacid-tacrolimus", "order-sign", meds=[rx("tacrolimus")], drafts=[draft("mg_oxide")])


# --- mg-supplement-spacing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spaced", "shown", "short", "interval", "sources"),
    [
        (
            rx("levothyroxine"),
            "levothyroxine",
            "levothyroxine",
            "4 h apart",
            ("levothyroxine-label", "001"),
        ),
        (rx("tacrolimus"), TACROLIMUS, "tacrolimus", "2 h apart", ("prograf-label", "001")),
        (
            rx("mycophenolate"),
            MYCOPHENOLATE,
            "mycophenolate mofetil",
            "2 h apart",
            ("cellcept-label", "001"),
        ),
        (
            rx("ca_carbonate"),
            DRUGS["ca_carbonate"][1],
            "calcium carbonate",
            "2 h apart",
            ("001", "003"),
        ),
        (
            med_request("2551", "ciprofloxacin 500 MG Oral Tablet"),
            "ciprofloxacin 500 MG Oral Tablet",
            "ciprofloxacin",
            "2 h before or 6 h after the magnesium",
            ("cipro-label", "003"),
        ),
        (
            med_request(text="ferrous sulfate 325 mg tablet"),
            "ferrous sulfate 325 mg tablet",
            "ferrous sulfate",
            "2 h apart",
            ("001",),
        ),
    ],
    ids=["levothyroxine", "tacrolimus", "mycophenolate", "calcium", "fluoroquinolone", "iron"],
)
@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_oral_mg_ordered_with_a_drug_that_needs_spacing(
    hook: str,
    spaced: dict[str, Any],
    shown: str,
    short: str,
    interval: str,
    sources: tuple[str, ...],
) -> None:
    finding = fired(
        "mg-supplement-spacing", hook, meds=[spaced], drafts=[draft("mg_oxide", req_id="mg")]
    )
    assert finding.indicator == "info"
    assert finding.values == {
        "supplement": "magnesium oxide",
        "supplement_products": DRUGS["mg_oxide"][1],
        "spacing_short": f"{short} ({interval})",
        "spacing": ({"drug": shown, "short": short, "interval": interval, "sources": sources},),
    }
    assert finding.order_ids == ("MedicationRequest/mg",)


def test_spacing_drug_in_another_draft() -> None:
    finding = fired(
        "mg-supplement-spacing",
        "order-select",
        drafts=[draft("mg_oxide", req_id="mg"), draft("levothyroxine", req_id="lt")],
        selections=["MedicationRequest/mg"],
    )
    assert finding.values["spacing_short"] == "levothyroxine (4 h apart)"
    assert finding.order_ids == ("MedicationRequest/mg",)


def test_spacing_fires_the_other_way_round_for_a_drug_ordered_on_oral_mg() -> None:
    # 4.10: a drug of the spacing table ordered while an oral Mg product is active.
    finding = fired(
        "mg-supplement-spacing",
        "order-sign",
        meds=[rx("mg_oxide")],
        drafts=[draft("levothyroxine", req_id="lt")],
    )
    assert finding.values["supplement_products"] == DRUGS["mg_oxide"][1]
    assert finding.values["spacing_short"] == "levothyroxine (4 h apart)"
    assert finding.order_ids == ("MedicationRequest/lt",)


def test_spacing_needs_one_side_being_ordered() -> None:
    assert (
        silent(
            "mg-supplement-spacing",
            "order-sign",
            meds=[rx("mg_oxide"), rx("levothyroxine")],
            drafts=[draft("amlodipine")],
        )
        == "neither an oral Mg product nor a drug it binds is being ordered"
    )


def test_spacing_not_without_a_drug_that_needs_it() -> None:
    silent(
        "mg-supplement-spacing", "order-sign", meds=[rx("omeprazole")], drafts=[draft("mg_oxide")]
    )


def test_iv_mg_needs_no_spacing() -> None:
    silent(
        "mg-supplement-spacing", "order-sign", meds=[rx("tacrolimus")], drafts=[draft("mg_sulfate")]
    )


# --- mg-wasting-comedication ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("drug", "drug_class", "mechanism"),
    [
        ("omeprazole", "proton-pump inhibitor", "ppi"),
        ("furosemide", "loop diuretic", "loop_diuretic"),
        ("hctz", "thiazide diuretic", "thiazide"),
        ("gentamicin", "magnesium-wasting drug", "other_mg_wasting"),
        ("sirolimus", "mTOR inhibitor", "mtor_inhibitor"),
    ],
)
def test_wasting_drug_ordered_on_a_cni_with_normal_mg_is_info(
    drug: str, drug_class: str, mechanism: str
) -> None:
    finding = fired(
        "mg-wasting-comedication",
        "order-sign",
        labs=[mg(2.0)],
        meds=[rx("tacrolimus")],
        drafts=[draft(drug, req_id="w")],
    )
    assert finding.indicator == "info"
    assert finding.values["drug"] == DRUGS[drug][1]
    assert finding.values["drug_class"] == drug_class
    assert finding.values["mechanism_key"] == mechanism
    assert finding.values["mg"] == "2.0 mg/dL"
    assert finding.values["renewal"] is False
    assert finding.values["cni"] == "tacrolimus"
    assert finding.order_ids == ("MedicationRequest/w",)
    assert mechanism in shipped().topics["mg-wasting-comedication"].topic.mechanisms


@pytest.mark.parametrize(
    ("value", "unit", "indicator"),
    [
        (0.60, "mmol/L", "warning"),
        (1.5, "mg/dL", "warning"),
        (1.6, "mg/dL", "info"),  # at 1.6 mg/dL: not below the low line
        (0.68, "mmol/L", "info"),  # below the CNI target only
    ],
)
def test_wasting_drug_with_low_mg_off_a_cni(value: float, unit: str, indicator: str) -> None:
    finding = fired(
        "mg-wasting-comedication",
        "order-select",
        labs=[mg(value, unit)],
        drafts=[draft("omeprazole")],
    )
    assert finding.indicator == indicator
    assert finding.values["mg"] == f"{value:g} {unit}"
    assert finding.values["cni"] == ""


def test_wasting_drug_not_on_a_cni_with_normal_mg_does_not_fire() -> None:
    silent("mg-wasting-comedication", "order-sign", labs=[mg(1.7)], drafts=[draft("furosemide")])
    silent(
        "mg-wasting-comedication",
        "order-sign",
        labs=[mg(0.70, "mmol/L")],
        drafts=[draft("furosemide")],
    )


def test_wasting_drug_not_on_a_cni_without_any_mg_does_not_fire() -> None:
    silent("mg-wasting-comedication", "order-sign", drafts=[draft("furosemide")])


def test_wasting_drug_on_a_cni_without_a_current_mg_is_info() -> None:
    finding = fired(
        "mg-wasting-comedication",
        "order-sign",
        meds=[rx("cyclosporine")],
        drafts=[draft("omeprazole")],
    )
    assert finding.indicator == "info"
    assert finding.values["mg"] == ""
    assert finding.values["cni"] == "cyclosporine"


def test_wasting_drug_ordered_with_a_cni_in_the_same_order_set() -> None:
    finding = fired(
        "mg-wasting-comedication", "order-sign", drafts=[draft("omeprazole"), draft("tacrolimus")]
    )
    assert finding.values["cni"] == "tacrolimus"


def test_wasting_drug_active_but_not_ordered_does_not_fire() -> None:
    silent(
        "mg-wasting-comedication",
        "order-sign",
        labs=[mg(1.0)],
        meds=[rx("omeprazole"), rx("tacrolimus")],
        drafts=[draft("amlodipine")],
    )


def test_wasting_drug_in_an_unselected_draft_does_not_fire() -> None:
    silent(
        "mg-wasting-comedication",
        "order-select",
        labs=[mg(1.0)],
        meds=[rx("tacrolimus")],
        drafts=[draft("omeprazole", req_id="p"), draft("amlodipine", req_id="a")],
        selections=["MedicationRequest/a"],
    )
