"""4.9 hypermagnesemia: the high lines in every unit, what to stop, the IV infusion, order hooks,
and no low-Mg topic on a high or normal Mg."""

from __future__ import annotations

from typing import Any

import pytest

from tests.facts.builders import ionized_ca, mg, potassium, rx

from .kit import (
    HOOKS,
    ORDER_HOOKS,
    card,
    card_of,
    fire,
    fired_now,
    med,
    mg_hours_ago,
    order,
    quiet,
    suggested_codes,
)

HYPER = "hypermagnesemia"
LOW_MG_TOPICS = (
    "hypomagnesemia",
    "mg-digoxin",
    "mg-refractory-hypokalemia",
    "mg-refractory-hypocalcemia",
    "mg-declining",
)


@pytest.mark.parametrize(
    ("value", "unit", "indicator", "line"),
    [
        (3.0, "mg/dL", None, "3.0 mg/dL"),
        (3.01, "mg/dL", "warning", "3.0 mg/dL"),
        (4.8, "mg/dL", "warning", "3.0 mg/dL"),
        (4.81, "mg/dL", "critical", "4.8 mg/dL"),
        (1.25, "mmol/L", None, "1.25 mmol/L"),
        (1.26, "mmol/L", "warning", "1.25 mmol/L"),
        (2.0, "mmol/L", "warning", "1.25 mmol/L"),
        (2.01, "mmol/L", "critical", "2.00 mmol/L"),
        (2.5, "mEq/L", None, "1.25 mmol/L"),
        (2.52, "mEq/L", "warning", "1.25 mmol/L"),
        (4.0, "mEq/L", "warning", "1.25 mmol/L"),
        (4.02, "mEq/L", "critical", "2.00 mmol/L"),
    ],
)
def test_high_lines_in_every_unit(
    value: float, unit: str, indicator: str | None, line: str
) -> None:
    labs = [mg(value, unit)]
    if indicator is None:
        assert quiet(HYPER, labs=labs) == f"current Mg {value} {unit} is not above {line}"
        return
    finding = fire(HYPER, labs=labs)
    assert finding.indicator == indicator
    assert finding.values["threshold"] == line


def test_a_greater_than_result_at_the_line_is_above_it() -> None:
    assert fire(HYPER, labs=[mg(4.8, comparator=">")]).indicator == "critical"
    quiet(HYPER, labs=[mg(3.5, comparator="<")])


def test_warning_names_what_to_stop_and_asks_for_kidney_function() -> None:
    meds = [rx("mg_oxide"), med("milk_of_magnesia"), med("epsom_salt"), rx("antacid")]
    finding = fire(HYPER, labs=[mg(3.5)], meds=meds)
    assert finding.indicator == "warning"
    rendered = card_of(finding)
    # Several products: counted in the summary (which keeps its advice whole), named in detail.
    assert rendered["summary"] == (
        "Mg 3.5 mg/dL on 2026-11-19 is high: stop the 4 magnesium-containing products; "
        "check kidney function"
    )
    for product in (
        "Magnesium Oxide 400 MG Oral Tablet",
        "Milk of Magnesia 400 MG/5ML Oral Suspension",
        "Epsom salt (magnesium sulfate) oral powder",
        "Aluminum Hydroxide 200 MG / Magnesium Hydroxide 200 MG Chewable Tablet",
    ):
        assert product in rendered["detail"]
    assert "- Stop magnesium-containing supplements, antacids and laxatives:" in rendered["detail"]
    assert "- Check kidney function" in rendered["detail"]
    assert (
        "- Check patellar reflexes, respiration, blood pressure and the ECG" in rendered["detail"]
    )
    assert suggested_codes(rendered) == ["19123-9", "2160-0"]


@pytest.mark.parametrize("value", [3.5, 5.5])
def test_the_summary_keeps_its_advice_whatever_the_products(value: float) -> None:
    meds = [rx("mg_oxide"), med("milk_of_magnesia"), rx("antacid")]
    summary = card(HYPER, labs=[mg(value)], meds=meds)["summary"]
    assert summary.endswith(
        "; check kidney function" if value < 4.8 else "; check reflexes, breathing and the ECG"
    )
    one = card(HYPER, labs=[mg(value)], meds=[rx("antacid")])["summary"]
    assert "stop aluminum hydroxide / magnesium hydroxide; check" in one


def test_critical_asks_for_reflexes_breathing_and_ecg() -> None:
    rendered = card(HYPER, labs=[mg(2.3, "mmol/L")], meds=[rx("mg_oxide")])
    assert rendered["indicator"] == "critical"
    assert rendered["summary"] == (
        "Mg 2.3 mmol/L on 2026-11-19 is dangerously high: stop magnesium oxide; "
        "check reflexes, breathing and the ECG"
    )
    assert (
        "IV calcium gluconate counters the cardiac and neuromuscular effects"
        in (rendered["detail"])
    )


def test_no_known_source_asks_to_look_for_one() -> None:
    rendered = card(HYPER, labs=[mg(3.5)])
    assert rendered["summary"] == (
        "Mg 3.5 mg/dL on 2026-11-19 is high: look for a magnesium source; check kidney function"
    )


def test_a_critical_high_older_than_72_hours_asks_for_a_recheck() -> None:
    finding = fire(HYPER, labs=[mg_hours_ago(5.2, "mg/dL", 73)])
    assert finding.indicator == "warning"
    assert finding.values["stale"] is True
    assert card_of(finding)["summary"] == (
        "Last Mg 5.2 mg/dL on 2026-11-17 was dangerously high: recheck now"
    )
    assert fire(HYPER, labs=[mg_hours_ago(5.2, "mg/dL", 72)]).indicator == "critical"


@pytest.mark.parametrize("value", [3.5, 6.0])
def test_an_iv_magnesium_sulfate_infusion_turns_it_into_information(value: float) -> None:
    finding = fire(HYPER, labs=[mg(value)], meds=[med("mg_sulfate_iv")])
    assert finding.indicator == "info"
    assert finding.suggestions == ()
    rendered = card_of(finding)
    assert rendered["summary"] == (
        f"On IV magnesium sulfate with Mg {value} mg/dL: follow the infusion protocol's "
        "monitoring (reflexes, respiration, urine output)"
    )
    assert "magnesium sulfate 500 MG/ML Injectable Solution" in rendered["detail"]


# --- order hooks ------------------------------------------------------------------------------


@pytest.mark.parametrize("hook", ORDER_HOOKS)
@pytest.mark.parametrize(
    "product", ["mg_oxide", "antacid", "milk_of_magnesia", "epsom_salt", "mg_sulfate_iv"]
)
def test_order_hook_warning_when_a_mg_product_is_being_ordered(hook: str, product: str) -> None:
    finding = fire(HYPER, hook, labs=[mg(1.5, "mmol/L")], drafts=[order(product, req_id="p")])
    assert finding.indicator == "warning"
    assert finding.order_ids == ("MedicationRequest/p",)


@pytest.mark.parametrize("hook", ORDER_HOOKS)
def test_order_hook_warning_quiet_on_an_unrelated_order(hook: str) -> None:
    why = quiet(HYPER, hook, labs=[mg(3.5)], drafts=[order("amlodipine")])
    assert why == "Mg 3.5 mg/dL is high; no Mg-containing product is being ordered"
    # An active product does not count: only what is being ordered.
    quiet(HYPER, hook, labs=[mg(3.5)], meds=[rx("mg_oxide")], drafts=[order("amlodipine")])


@pytest.mark.parametrize("hook", ORDER_HOOKS)
def test_order_hook_critical_on_any_order(hook: str) -> None:
    finding = fire(HYPER, hook, labs=[mg(2.1, "mmol/L")], drafts=[order("amlodipine")])
    assert finding.indicator == "critical"


def test_order_select_product_in_an_unselected_draft_is_not_being_ordered() -> None:
    quiet(
        HYPER,
        "order-select",
        labs=[mg(3.5)],
        drafts=[order("mg_oxide", req_id="m"), order("amlodipine", req_id="a")],
        selections=["MedicationRequest/a"],
    )


# --- no low-Mg topic on a high or normal Mg ---------------------------------------------------


def _everything_else(hook: str) -> dict[str, Any]:
    """Low K and Ca, digoxin, a CNI, a falling trend: what would make every low-Mg card fire."""
    drafts = (
        [order("kcl"), order("ca_carbonate"), order("digoxin")] if hook != "patient-view" else []
    )
    return {
        "meds": [rx("digoxin"), rx("tacrolimus")],
        "drafts": drafts,
    }


@pytest.mark.parametrize("hook", HOOKS)
@pytest.mark.parametrize(
    "result",
    [(3.5, "mg/dL"), (1.3, "mmol/L"), (2.6, "mEq/L"), (2.1, "mg/dL"), (0.9, "mmol/L")],
    ids=["high-mg/dL", "high-mmol/L", "high-mEq/L", "normal-mg/dL", "normal-mmol/L"],
)
def test_no_low_mg_topic_fires_on_a_high_or_normal_mg(hook: str, result: tuple[float, str]) -> None:
    value, unit = result
    # A falling trend to the current result, so mg-declining has its trend.
    labs = [
        mg(value * 1.6, unit, days_ago=90),
        mg(value * 1.3, unit, days_ago=45),
        mg(value, unit),
        potassium(2.8),
        ionized_ca(0.9),
    ]
    found = fired_now(hook, labs=labs, **_everything_else(hook))
    assert not set(found) & set(LOW_MG_TOPICS), found
