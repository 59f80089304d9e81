"""Order time: 4.10 spacing both ways, per drug; 4.11 Mg-wasting drugs, diuretics and PPIs;
4.12 quieter order hooks (relevant orders only, critical always), the decline floor and the
shipped snooze defaults."""

from __future__ import annotations

from typing import Any

import pytest

from tests.facts.builders import egfr, mg, potassium, rx, shipped

from .kit import (
    HOOKS,
    ORDER_HOOKS,
    card,
    card_of,
    fire,
    fired_now,
    med,
    not_to_give,
    order,
    quiet,
    serum_mg_order,
    statement,
    value_string,
    with_route,
)

SPACING = "mg-supplement-spacing"
WASTING = "mg-wasting-comedication"
HYPO = "hypomagnesemia"

# --- 4.10 spacing -----------------------------------------------------------------------------

# A drug of every entry of the spacing table in cards/medications.yaml.
SPACED_DRUG = {
    "tacrolimus": "tacrolimus",
    "mycophenolate": "mycophenolate",
    "levothyroxine": "levothyroxine",
    "ciprofloxacin": "ciprofloxacin",
    "levofloxacin": "levofloxacin",
    "moxifloxacin": "moxifloxacin",
    "doxycycline": "doxycycline",
    "minocycline": "minocycline",
    "tetracycline": "tetracycline",
    "alendronate": "alendronate",
    "risedronate": "risedronate",
    "ibandronate": "ibandronate",
    "dolutegravir": "dolutegravir",
    "bictegravir": "bictegravir",
    "eltrombopag": "eltrombopag",
    "cefdinir": "cefdinir",
    "penicillamine": "penicillamine",
    "ca_supplement": "ca_carbonate",
    "iron": "ferrous_sulfate",
}


def _drug(name: str, **kw: Any) -> dict[str, Any]:
    return (
        rx(name, **kw)
        if name in ("tacrolimus", "mycophenolate", "levothyroxine")
        else med(name, **kw)
    )


def test_every_spacing_entry_has_a_drug_here() -> None:
    assert set(SPACED_DRUG) == set(shipped().medications.spacing)


@pytest.mark.parametrize("entry", sorted(SPACED_DRUG))
@pytest.mark.parametrize("direction", ["mg-ordered", "drug-ordered"])
def test_each_drug_gets_its_own_interval_from_the_table(entry: str, direction: str) -> None:
    spacing = shipped().medications.spacing[entry]
    drug = SPACED_DRUG[entry]
    if direction == "mg-ordered":
        kw: dict[str, Any] = {"meds": [_drug(drug)], "drafts": [order("mg_oxide")]}
    else:
        kw = {"meds": [rx("mg_oxide")], "drafts": [order(drug)]}
    finding = fire(SPACING, "order-sign", **kw)
    (item,) = finding.values["spacing"]  # type: ignore[misc]
    assert item["interval"] == spacing.interval
    assert item["sources"] == tuple(spacing.sources)
    rendered = card_of(finding)
    assert f"{item['drug']}**: {spacing.interval}" in rendered["detail"]


def test_intervals_as_the_labels_give_them() -> None:
    spacing = shipped().medications.spacing
    assert spacing["ciprofloxacin"].interval == "2 h before or 6 h after the magnesium"
    assert spacing["moxifloxacin"].interval == "4 h before or 8 h after the magnesium"
    assert spacing["levothyroxine"].interval == "4 h apart"
    assert spacing["eltrombopag"].interval == "2 h before or 4 h after the magnesium"
    assert (
        spacing["ibandronate"].interval
        == "at least 60 min before the magnesium (and anything else)"
    )


@pytest.mark.parametrize(
    "active",
    [
        {"meds": [rx("mg_oxide")]},
        {"meds": [rx("antacid")]},
        {"meds": [med("milk_of_magnesia")]},
        {"meds": [med("mg_citrate_solution")]},
        {"statements": [statement("mg_oxide")]},
    ],
    ids=["supplement", "antacid", "milk-of-magnesia", "laxative", "statement"],
)
def test_a_drug_ordered_while_an_oral_mg_product_is_active(active: dict[str, Any]) -> None:
    finding = fire(SPACING, "order-select", drafts=[order("ciprofloxacin", req_id="c")], **active)
    assert finding.order_ids == ("MedicationRequest/c",)
    assert finding.values["spacing_short"] == (
        "ciprofloxacin (2 h before or 6 h after the magnesium)"
    )


@pytest.mark.parametrize("hook", ORDER_HOOKS)
@pytest.mark.parametrize(
    ("active", "ordered"),
    [
        ("mg_oxide", "levofloxacin_iv"),  # IV levofloxacin
        ("mg_oxide", "tacrolimus_iv"),
        ("mg_oxide", "ca_gluconate_iv"),  # IV calcium gluconate
        ("levothyroxine", "mg_sulfate_iv"),  # IV magnesium
        ("tacrolimus_iv", "mg_oxide"),
    ],
)
def test_oral_on_both_sides_only(hook: str, active: str, ordered: str) -> None:
    meds = [rx(active) if active in ("mg_oxide", "levothyroxine") else med(active)]
    quiet(SPACING, hook, meds=meds, drafts=[order(ordered)])


def test_a_route_coded_iv_is_not_oral() -> None:
    iv = with_route(order("levofloxacin"), "47625008", "Intravenous route")
    quiet(SPACING, "order-sign", meds=[rx("mg_oxide")], drafts=[iv])


def test_an_order_not_to_give_is_not_being_ordered() -> None:
    quiet(
        SPACING, "order-sign", meds=[rx("mg_oxide")], drafts=[not_to_give(order("ciprofloxacin"))]
    )


@pytest.mark.parametrize("hook", ORDER_HOOKS)
def test_spacing_fires_alongside_the_antacid_cards(hook: str) -> None:
    found = fired_now(
        hook,
        labs=[mg(2.0)],
        meds=[rx("tacrolimus"), rx("mycophenolate")],
        drafts=[order("antacid")],
    )
    assert found == {
        "antacid-tacrolimus": "warning",
        "antacid-mycophenolate": "warning",
        SPACING: "info",
    }


def test_spacing_is_never_on_patient_view() -> None:
    assert quiet(SPACING, meds=[rx("mg_oxide"), rx("levothyroxine")]) == (
        "not evaluated on patient-view"
    )


# --- 4.11 Mg-wasting drugs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labs", "on_cni", "k_sparing"),
    [
        ([mg(1.5), egfr(60), potassium(4.2)], False, True),
        ([mg(1.5), egfr(30), potassium(4.99)], False, True),
        ([mg(1.5), egfr(30), potassium(4.99, "mEq/L")], False, True),
        ([mg(1.5), egfr(29), potassium(4.2)], False, False),
        ([mg(1.5), egfr(60), potassium(5.0)], False, False),
        ([mg(1.5), egfr(60), potassium(5.0, "mEq/L")], False, False),
        ([mg(1.5), potassium(4.2)], False, False),  # kidney function unknown
        ([mg(1.5), egfr(60)], False, False),  # no current K
        ([mg(1.5), egfr(60), potassium(4.2, days_ago=31)], False, False),  # stale K
        ([mg(1.5), egfr(60), potassium(4.2)], True, False),  # on a CNI
    ],
    ids=[
        "off-cni-egfr-60-k-4.2",
        "egfr-30-k-4.99",
        "k-4.99-meq",
        "egfr-29",
        "k-5.0",
        "k-5.0-meq",
        "no-egfr",
        "no-k",
        "stale-k",
        "on-cni",
    ],
)
@pytest.mark.parametrize("diuretic", ["furosemide", "hctz"])
def test_k_sparing_diuretics_only_in_detail_off_a_cni_with_egfr_30_and_k_below_5(
    labs: list[dict[str, Any]], on_cni: bool, k_sparing: bool, diuretic: str
) -> None:
    meds = [rx("tacrolimus")] if on_cni else []
    finding = fire(WASTING, "order-sign", labs=labs, meds=meds, drafts=[order(diuretic)])
    assert finding.values["k_sparing_ok"] is k_sparing
    rendered = card_of(finding)  # checks that no summary names amiloride or spironolactone
    detail = rendered["detail"]
    if k_sparing:
        assert "Adding a potassium-sparing diuretic (amiloride or spironolactone)" in detail
        assert "monitor potassium (current K " in detail
    else:
        assert "amiloride" not in detail
        assert "spironolactone" not in detail
    if on_cni:
        assert (
            "Calcineurin inhibitors raise potassium: K-sparing diuretics need close K monitoring "
            "(current K 4.2 mmol/L)"
        ) in detail


@pytest.mark.parametrize(
    ("labs", "meds", "fires", "indicator"),
    [
        ([mg(2.0)], ["tacrolimus"], True, "info"),  # new drug, normal Mg, on a CNI
        ([mg(2.0)], ["tacrolimus", "omeprazole"], False, None),  # renewal, normal Mg
        ([mg(1.69)], ["tacrolimus", "omeprazole"], True, "info"),  # renewal, below CNI target
        ([mg(0.69, "mmol/L")], ["tacrolimus", "omeprazole"], True, "info"),
        ([mg(1.38, "mEq/L")], ["tacrolimus", "omeprazole"], True, "info"),  # 0.69 mmol/L
        ([mg(1.4, "mEq/L")], ["tacrolimus", "omeprazole"], False, None),  # 0.70: at the target
        ([mg(1.5)], ["tacrolimus", "omeprazole"], True, "warning"),  # renewal, low Mg
        ([], ["tacrolimus", "omeprazole"], True, "info"),  # renewal, no current Mg
        ([mg(2.0, days_ago=31)], ["tacrolimus", "omeprazole"], True, "info"),  # stale Mg
        ([mg(1.5, status="entered-in-error")], ["tacrolimus", "omeprazole"], True, "info"),
    ],
    ids=[
        "new",
        "renewal-normal",
        "renewal-1.69-mgdl",
        "renewal-0.69-mmol",
        "renewal-1.38-meq",
        "renewal-1.40-meq",
        "renewal-low",
        "renewal-no-mg",
        "renewal-stale-mg",
        "renewal-entered-in-error",
    ],
)
def test_new_drug_versus_renewal(
    labs: list[dict[str, Any]], meds: list[str], fires: bool, indicator: str | None
) -> None:
    kw: dict[str, Any] = {
        "labs": labs,
        "meds": [rx(m) for m in meds],
        "drafts": [order("omeprazole")],
    }
    if not fires:
        assert quiet(WASTING, "order-sign", **kw).startswith("renewal of a drug already taken")
        return
    finding = fire(WASTING, "order-sign", **kw)
    assert finding.indicator == indicator
    assert finding.values["renewal"] is ("omeprazole" in meds)


def test_another_ppi_is_a_new_drug() -> None:
    finding = fire(
        WASTING,
        "order-sign",
        labs=[mg(2.0)],
        meds=[rx("tacrolimus"), rx("omeprazole")],
        drafts=[order("pantoprazole")],
    )
    assert finding.values["renewal"] is False


@pytest.mark.parametrize("ppi", ["omeprazole", "pantoprazole", "lansoprazole"])
def test_ppi_on_tacrolimus_names_the_level_interaction(ppi: str) -> None:
    drafts = [order(ppi) if ppi != "omeprazole" else order("omeprazole")]
    detail = card(WASTING, "order-select", labs=[mg(2.0)], meds=[rx("tacrolimus")], drafts=drafts)[
        "detail"
    ]
    assert (
        "On tacrolimus: omeprazole and lansoprazole can raise tacrolimus levels; pantoprazole or "
        "an H2 blocker is preferred"
    ) in detail
    assert "mycophenolic acid exposure" not in detail


def test_ppi_on_cyclosporine_has_no_tacrolimus_note() -> None:
    detail = card(
        WASTING,
        "order-select",
        labs=[mg(2.0)],
        meds=[rx("cyclosporine")],
        drafts=[order("omeprazole")],
    )["detail"]
    assert "raise tacrolimus levels" not in detail


@pytest.mark.parametrize(
    ("mycophenolate", "note"), [("mofetil", True), ("mycophenolic_acid", False)]
)
def test_ppi_on_mycophenolate_mofetil_lowers_mpa_exposure(mycophenolate: str, note: bool) -> None:
    active = rx("mycophenolate") if mycophenolate == "mofetil" else med("mycophenolic_acid")
    finding = fire(
        WASTING,
        "order-sign",
        labs=[mg(2.0)],
        meds=[rx("tacrolimus"), active],
        drafts=[order("esomeprazole")],
    )
    assert finding.values["ppi_mmf"] is note
    detail = card_of(finding)["detail"]
    mmf = (
        "On mycophenolate mofetil: PPIs lower mycophenolic acid exposure "
        "(not with delayed-release mycophenolic acid)"
    )
    if note:
        assert mmf in detail
    else:
        assert "mycophenolic acid exposure" not in detail


@pytest.mark.parametrize("drug", ["carboplatin", "ifosfamide", "zoledronic_acid"])
def test_the_added_mg_wasting_drugs(drug: str) -> None:
    finding = fire(WASTING, "order-sign", labs=[mg(1.5)], drafts=[order(drug, req_id="w")])
    assert finding.indicator == "warning"
    assert finding.values["drug_class"] == "magnesium-wasting drug"
    assert finding.values["mechanism_key"] == "other_mg_wasting"
    assert finding.order_ids == ("MedicationRequest/w",)
    # And as context of a low Mg.
    assert fire(HYPO, labs=[mg(1.5)], meds=[med(drug)]).notes == ("other_wasting",)


def test_inhaled_tobramycin_still_counts() -> None:
    assert fire(HYPO, labs=[mg(1.5)], meds=[med("tobramycin_inhaled")]).notes == ("other_wasting",)


def test_no_summary_ever_names_a_k_sparing_diuretic() -> None:
    for diuretic in ("furosemide", "hctz"):
        for labs in (
            [mg(1.5), egfr(60), potassium(4.2)],
            [mg(0.6, "mmol/L"), egfr(90), potassium(3.9)],
        ):
            summary = card(WASTING, "order-sign", labs=labs, drafts=[order(diuretic)])["summary"]
            assert "amiloride" not in summary.casefold()
            assert "spironolactone" not in summary.casefold()


# --- 4.12 quieter order hooks -----------------------------------------------------------------

RELEVANT_ORDERS = [
    "mg_oxide",
    "mg_sulfate_iv",
    "antacid",
    "epsom_salt",
    "kcl",
    "ca_carbonate",
    "ca_gluconate_iv",
    "tacrolimus",
    "cyclosporine",
    "digoxin",
    "omeprazole",
    "furosemide",
    "gentamicin",
    "levothyroxine",
    "ciprofloxacin",
    "ferrous_sulfate",
]


def _ordered(name: str) -> dict[str, Any]:
    from tests.facts.builders import DRUGS

    return rx(name, status="draft", authored_days_ago=0) if name in DRUGS else order(name)


@pytest.mark.parametrize("hook", ORDER_HOOKS)
@pytest.mark.parametrize("name", RELEVANT_ORDERS)
def test_low_mg_warning_fires_for_a_relevant_order(hook: str, name: str) -> None:
    finding = fire(HYPO, hook, labs=[mg(1.5)], drafts=[_ordered(name)])
    assert finding.indicator == "warning"


@pytest.mark.parametrize("hook", ORDER_HOOKS)
def test_low_mg_warning_and_info_quiet_for_an_unrelated_order(hook: str) -> None:
    why = quiet(HYPO, hook, labs=[mg(1.5)], drafts=[order("amlodipine")])
    assert why == "Mg 1.5 mg/dL is low (warning) but no order being placed is about it"
    why = quiet(HYPO, hook, labs=[mg(1.65)], meds=[rx("tacrolimus")], drafts=[order("amlodipine")])
    assert why == "Mg 1.65 mg/dL is low (info) but no order being placed is about it"


@pytest.mark.parametrize("hook", ORDER_HOOKS)
def test_a_relevant_order_not_to_give_does_not_count(hook: str) -> None:
    quiet(HYPO, hook, labs=[mg(1.5)], drafts=[not_to_give(order("kcl"))])


@pytest.mark.parametrize("hook", ORDER_HOOKS)
@pytest.mark.parametrize("result", [(1.1, "mg/dL"), (0.45, "mmol/L"), (0.9, "mEq/L")])
def test_critical_always_fires_on_order_hooks(hook: str, result: tuple[float, str]) -> None:
    assert fire(HYPO, hook, labs=[mg(*result)], drafts=[order("amlodipine")]).indicator == (
        "critical"
    )


def test_monitoring_gap_only_for_a_cni_selected_and_never_at_order_sign() -> None:
    gap = {"labs": [mg(2.0, days_ago=60)], "meds": [rx("tacrolimus", authored_days_ago=300)]}
    assert fire("mg-monitoring-gap", **gap).indicator == "info"
    assert fire("mg-monitoring-gap", "order-select", drafts=[order("tacrolimus")], **gap)
    assert quiet("mg-monitoring-gap", "order-select", drafts=[order("kcl")], **gap) == (
        "no CNI selected"
    )
    assert quiet("mg-monitoring-gap", "order-sign", drafts=[order("tacrolimus")], **gap) == (
        "not evaluated on order-sign"
    )


@pytest.mark.parametrize(
    ("trend", "fires"),
    [
        ([(1.0, "mmol/L"), (0.9, "mmol/L"), (0.79, "mmol/L")], True),
        ([(1.0, "mmol/L"), (0.9, "mmol/L"), (0.80, "mmol/L")], False),
        ([(2.5, "mg/dL"), (2.2, "mg/dL"), (1.94, "mg/dL")], True),
        ([(2.5, "mg/dL"), (2.2, "mg/dL"), (1.95, "mg/dL")], False),
        ([(2.0, "mEq/L"), (1.8, "mEq/L"), (1.58, "mEq/L")], True),
        ([(2.0, "mEq/L"), (1.8, "mEq/L"), (1.60, "mEq/L")], False),  # 0.80 mmol/L
    ],
    ids=["0.79-mmol", "0.80-mmol", "1.94-mgdl", "1.95-mgdl", "1.58-meq", "1.60-meq"],
)
def test_declining_only_below_the_floor(trend: list[tuple[float, str]], fires: bool) -> None:
    labs = [mg(v, u, days_ago=d) for (v, u), d in zip(trend, (90, 45, 2), strict=True)]
    kw: dict[str, Any] = {"labs": labs, "meds": [rx("tacrolimus")]}
    if fires:
        assert fire("mg-declining", **kw).indicator == "info"
    else:
        assert "is not below the decline floor" in quiet("mg-declining", **kw)


@pytest.mark.parametrize("hook", HOOKS[1:])
def test_declining_only_on_patient_view(hook: str) -> None:
    labs = [mg(1.0, "mmol/L", days_ago=90), mg(0.9, "mmol/L", days_ago=45), mg(0.75, "mmol/L")]
    assert quiet(
        "mg-declining", hook, labs=labs, meds=[rx("tacrolimus")], drafts=[order("tacrolimus")]
    ) == (f"not evaluated on {hook}")


def test_shipped_snooze_defaults() -> None:
    hours = {
        code: dict(topic.topic.snooze_hours)
        for code, topic in shipped().topics.items()
        if topic.topic.snooze_hours
    }
    assert hours == {
        "hypomagnesemia": {"info": 24},
        "mg-declining": {"info": 24},
        "mg-monitoring-gap": {"info": 24, "warning": 24},
        "mg-wasting-comedication": {"info": 24, "warning": 24},
    }
    # Never a critical tier.
    assert all("critical" not in per for per in hours.values())


# --- a serum Mg being ordered answers every "check Mg"; an unreadable newest Mg is not "none" ---


def test_a_serum_mg_order_answers_the_check_mg_of_every_card() -> None:
    drafts = [order("kcl"), serum_mg_order()]
    k_card = fire("mg-refractory-hypokalemia", "order-sign", labs=[potassium(2.8)], drafts=drafts)
    assert k_card.suggestions == ()
    gap = quiet(
        "mg-monitoring-gap",
        "order-select",
        drafts=[order("tacrolimus"), serum_mg_order()],
    )
    assert gap == "a serum Mg is among the orders being placed"


def test_an_unreadable_newest_mg_is_never_called_missing() -> None:
    unreadable = value_string("19123-9", "see comment", days_ago=1)
    rendered = card("mg-refractory-hypokalemia", labs=[potassium(3.2), unreadable])
    assert rendered["summary"] == (
        "K 3.2 mmol/L is low with no current Mg (the latest could not be read): check Mg; "
        "low Mg keeps K from correcting"
    )
    assert "The latest Mg result (2026-11-19) could not be read: review it" in rendered["detail"]
    assert "No Mg result in the last" not in rendered["detail"]
