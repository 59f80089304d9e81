"""4.2 digoxin and 4.3 severity: the digoxin line, the 72-hour critical window, what the patient
already gets, the lower-tacrolimus-target note, suggestion labels and thresholds from settings.

Both sides of every line in mg/dL, mmol/L and mEq/L (and mg/L where a mass result may come so).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from cds_service.content import Content, Threshold
from cds_service.rules import Suggestion
from tests.facts.builders import mg, rx, shipped, with_settings

from .kit import (
    card,
    card_of,
    fire,
    labels,
    med,
    mg_hours_ago,
    order,
    quiet,
    statement,
    suggested_codes,
    text,
)

HYPO = "hypomagnesemia"
DIGOXIN = "mg-digoxin"
ORAL_CODE = "198741"  # the formulary's oral magnesium (magnesium oxide 400 mg)
RECHECK_ALL_CODES = ["19123-9", "2823-3", "17861-6", "2160-0"]

# --- 4.2 digoxin -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "fires", "target"),
    [
        (1.99, "mg/dL", True, "2.0 mg/dL"),
        (2.0, "mg/dL", False, "2.0 mg/dL"),
        (19.9, "mg/L", True, "2.0 mg/dL"),
        (20.0, "mg/L", False, "2.0 mg/dL"),
        (0.81, "mmol/L", True, "0.82 mmol/L"),
        (0.82, "mmol/L", False, "0.82 mmol/L"),
        (1.63, "mEq/L", True, "0.82 mmol/L"),  # 0.815 mmol/L
        (1.64, "mEq/L", False, "0.82 mmol/L"),  # 0.82 mmol/L exactly
    ],
)
def test_digoxin_line_is_0_82_mmol_or_2_0_mg_dl(
    value: float, unit: str, fires: bool, target: str
) -> None:
    labs = [mg(value, unit)]
    if not fires:
        assert quiet(DIGOXIN, labs=labs, meds=[rx("digoxin")]) == (
            f"digoxin with Mg {value} {unit}, not below {target}"
        )
        return
    finding = fire(DIGOXIN, labs=labs, meds=[rx("digoxin")])
    assert finding.indicator == "warning"
    assert finding.values["target"] == target
    assert finding.values["target_both"] == "2 mg/dL (0.82 mmol/L)"
    rendered = card_of(finding)
    assert rendered["summary"].startswith(
        f"Digoxin with Mg {value} {unit}, below {target}: toxicity risk; "
    )


def test_digoxin_with_mg_2_1_mg_dl_gets_no_card() -> None:
    quiet(DIGOXIN, labs=[mg(2.1)], meds=[rx("digoxin")])


def test_digoxin_card_explains_the_unit_slip_of_the_source() -> None:
    detail = card(DIGOXIN, labs=[mg(0.75, "mmol/L")], meds=[rx("digoxin")])["detail"]
    assert "below the digoxin target of 2 mg/dL (0.82 mmol/L)" in detail
    assert 'one source writes "at least 2 mEq/L" (003). That is a unit slip' in detail
    assert "2 mEq/L is 1.0 mmol/L (2.43 mg/dL), above the normal range" in detail
    assert "The target used here is 2 mg/dL (0.82 mmol/L)." in detail


@pytest.mark.parametrize(
    "labs",
    [[], [mg(1.5, days_ago=31)], [mg(1.5, status="entered-in-error")]],
    ids=["missing", "stale", "entered-in-error"],
)
def test_digoxin_without_a_current_mg_gets_no_card(labs: list[dict[str, Any]]) -> None:
    assert quiet(DIGOXIN, labs=labs, meds=[rx("digoxin")]) == "digoxin, but no current Mg"


def test_digoxin_card_suggests_oral_mg_only_when_not_taking_it() -> None:
    rendered = card(DIGOXIN, labs=[mg(1.9)], meds=[rx("digoxin")])
    assert suggested_codes(rendered) == [ORAL_CODE]
    on_oral = card(DIGOXIN, labs=[mg(1.9)], meds=[rx("digoxin"), rx("mg_oxide")])
    assert suggested_codes(on_oral) == []
    assert (
        "already on magnesium oxide: increase or split the dose, check adherence"
        in (on_oral["summary"])
    )


# --- 4.3 the critical window -----------------------------------------------------------------

CRITICAL = [(1.1, "mg/dL"), (0.45, "mmol/L"), (0.9, "mEq/L")]


@pytest.mark.parametrize(("value", "unit"), CRITICAL)
def test_critical_result_exactly_72_hours_old_is_critical(value: float, unit: str) -> None:
    finding = fire(HYPO, labs=[mg_hours_ago(value, unit, 72)])
    assert finding.indicator == "critical"
    assert finding.values["stale"] is False
    rendered = card_of(finding)
    assert rendered["summary"] == (
        f"Mg {value} {unit} on 2026-11-17 is critically low: give IV magnesium sulfate"
    )
    assert "Check for symptoms and the ECG (QTc)" in rendered["detail"]
    assert "IV magnesium sulfate (003)" in rendered["detail"]


@pytest.mark.parametrize(("value", "unit"), CRITICAL)
@pytest.mark.parametrize("hours", [72.02, 96, 24 * 29])
def test_critical_result_older_than_72_hours_is_a_warning_to_recheck(
    value: float, unit: str, hours: float
) -> None:
    finding = fire(HYPO, labs=[mg_hours_ago(value, unit, hours)])
    assert finding.indicator == "warning"
    assert finding.values["stale"] is True
    assert finding.advice is None  # no IV magnesium on stale data
    assert finding.suggestions == (
        Suggestion("lab", ("magnesium",), "Recheck Mg now: the last result was critically low"),
    )
    rendered = card_of(finding)
    day = finding.values["mg_date"]
    assert rendered["summary"] == f"Last Mg {value} {unit} on {day} was critically low: recheck now"
    assert suggested_codes(rendered) == ["19123-9"]
    assert "1-2 g IV" not in rendered["detail"]


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_stale_critical_warning_is_quiet_on_an_unrelated_order(hook: str) -> None:
    # Only a critical card breaks through on an unrelated order (4.12); this one is a warning.
    quiet(HYPO, hook, labs=[mg(1.1, days_ago=5)], drafts=[order("amlodipine")])


def test_critical_wording_never_says_symptoms_are_expected() -> None:
    # card() checks the forbidden phrases, including "symptoms and arrhythmias are expected".
    detail = card(HYPO, labs=[mg(1.0)])["detail"]
    assert "- Check for symptoms and the ECG (QTc)" in detail


# --- 4.3 suggestion labels name exactly what they order --------------------------------------


def test_recheck_label_names_the_four_labs_it_orders() -> None:
    rendered = card(HYPO, labs=[mg(1.0)])
    assert labels(rendered) == ["Order serum Mg, K, Ca and creatinine"]
    assert suggested_codes(rendered) == RECHECK_ALL_CODES
    (suggestion,) = rendered["suggestions"]
    assert [a["description"] for a in suggestion["actions"]] == [
        "Order a serum magnesium",
        "Order a serum potassium",
        "Order a serum calcium",
        "Order a serum creatinine",
    ]


def _without_lab_code(key: str) -> Content:
    base = shipped()
    entry = base.formulary.lab_orders[key].model_copy(update={"code": None})
    lab_orders = {**base.formulary.lab_orders, key: entry}
    formulary = base.formulary.model_copy(update={"lab_orders": lab_orders})
    return dataclasses.replace(base, formulary=formulary)


def test_a_recheck_label_drops_what_the_site_cannot_order() -> None:
    content = _without_lab_code("creatinine")
    rendered = card_of(fire(HYPO, labs=[mg(1.0)]), content)
    assert labels(rendered) == ["Order serum Mg, K and Ca"]
    assert suggested_codes(rendered) == ["19123-9", "2823-3", "17861-6"]


def test_no_iv_order_is_invented_without_a_formulary_code() -> None:
    # The shipped formulary has no IV magnesium code: the plan asks for it, the card leaves it out.
    finding = fire(HYPO, labs=[mg(1.0)])
    assert finding.advice is not None
    assert finding.advice.suggestion == Suggestion("medication", ("iv_magnesium",))
    assert labels(card_of(finding)) == ["Order serum Mg, K, Ca and creatinine"]


# --- 4.3 supplement state changes the text, in every tier -------------------------------------

# (tier, Mg result, on a CNI) for each tier.
TIERS = [
    ("critical", (1.0, "mg/dL"), False),
    ("warning", (0.62, "mmol/L"), False),
    ("info", (1.36, "mEq/L"), True),  # 0.68 mmol/L: below the 0.70 CNI target only
]


def _meds(extra: list[dict[str, Any]], on_cni: bool) -> list[dict[str, Any]]:
    return [*([rx("tacrolimus")] if on_cni else []), *extra]


@pytest.mark.parametrize(("tier", "result", "on_cni"), TIERS)
def test_iv_magnesium_active_is_named_and_not_ordered_again(
    tier: str, result: tuple[float, str], on_cni: bool
) -> None:
    finding = fire(HYPO, labs=[mg(*result)], meds=_meds([med("mg_sulfate_iv")], on_cni))
    assert finding.indicator == tier
    assert finding.advice is not None
    assert finding.advice.action == "iv_given"
    assert finding.advice.suggestion is None
    rendered = card_of(finding)
    assert rendered["summary"].endswith(": IV magnesium sulfate already ordered")
    assert (
        "Already ordered: magnesium sulfate 500 MG/ML Injectable Solution; no second IV order"
        in (rendered["detail"])
    )
    assert ORAL_CODE not in suggested_codes(rendered)


@pytest.mark.parametrize(("tier", "result", "on_cni"), TIERS)
def test_iv_magnesium_being_ordered_is_named_and_not_suggested(
    tier: str, result: tuple[float, str], on_cni: bool
) -> None:
    drafts = [order("mg_sulfate_iv"), *([order("tacrolimus")] if on_cni else [])]
    finding = fire(HYPO, "order-sign", labs=[mg(*result)], drafts=drafts)
    assert finding.indicator == tier
    assert finding.advice is not None
    assert finding.advice.action == "iv_given"
    assert card_of(finding)["summary"].endswith(": IV magnesium sulfate already ordered")


@pytest.mark.parametrize(("tier", "result", "on_cni"), TIERS[1:])
@pytest.mark.parametrize("source", ["request", "statement"])
def test_oral_magnesium_active_increase_or_split_no_new_order(
    tier: str, result: tuple[float, str], on_cni: bool, source: str
) -> None:
    meds = _meds([rx("mg_oxide")] if source == "request" else [], on_cni)
    statements = [statement("mg_oxide")] if source == "statement" else []
    finding = fire(HYPO, labs=[mg(*result)], meds=meds, statements=statements)
    assert finding.indicator == tier
    rendered = card_of(finding)
    assert rendered["summary"].endswith(
        ": already on magnesium oxide: increase or split the dose, check adherence"
    )
    assert (
        "Already on Magnesium Oxide 400 MG Oral Tablet: increase or split the dose"
        in (rendered["detail"])
    )
    assert ORAL_CODE not in suggested_codes(rendered)


@pytest.mark.parametrize(("tier", "result", "on_cni"), TIERS[1:])
def test_no_supplement_start_oral_magnesium(
    tier: str, result: tuple[float, str], on_cni: bool
) -> None:
    rendered = card(HYPO, labs=[mg(*result)], meds=_meds([], on_cni))
    assert rendered["indicator"] == tier
    assert rendered["summary"].endswith(": start oral magnesium")
    assert "keep supplementing" not in text(rendered).casefold()
    assert ORAL_CODE in suggested_codes(rendered)
    assert "Magnesium Oxide 400 MG Oral Tablet: 1 tablet" in rendered["detail"]


def test_critical_with_no_supplement_gives_iv() -> None:
    finding = fire(HYPO, labs=[mg(1.0)])
    assert finding.advice is not None
    assert finding.advice.action == "iv_give"
    assert card_of(finding)["summary"].endswith(": give IV magnesium sulfate")


def test_a_laxative_is_not_a_supplement() -> None:
    # Epsom salt (oral magnesium sulfate) is a laxative: not "already on" a supplement, not IV.
    finding = fire(HYPO, labs=[mg(1.5)], meds=[med("epsom_salt")])
    assert finding.advice is not None
    assert finding.advice.action == "oral_start"


# --- 4.3 the lower tacrolimus target ----------------------------------------------------------


def _persistent(
    labs: list[dict[str, Any]], cni: str = "tacrolimus", started: float = 60, **kw: Any
) -> Any:
    meds = [rx(cni), rx("mg_oxide", authored_days_ago=started)]
    return fire(HYPO, labs=labs, meds=meds, **kw)


THREE_LOW_OVER_28 = [
    [mg(1.5, days_ago=30), mg(1.4, days_ago=15), mg(1.5, days_ago=2)],
    [mg(0.62, "mmol/L", days_ago=30), mg(0.6, "mmol/L", days_ago=15), mg(0.64, "mmol/L")],
    [mg(1.2, "mEq/L", days_ago=30), mg(1.3, "mEq/L", days_ago=15), mg(1.24, "mEq/L")],
]


@pytest.mark.parametrize("labs", THREE_LOW_OVER_28, ids=["mg/dL", "mmol/L", "mEq/L"])
def test_three_low_results_over_28_days_on_a_supplement_lower_tacrolimus_target(
    labs: list[dict[str, Any]],
) -> None:
    finding = _persistent(labs)
    assert finding.notes == ("on_cni", "cni_persistent")
    assert finding.values["low_count"] == 3
    rendered = card_of(finding)
    assert (
        "consider a lower tacrolimus target with the transplant team (000)" in (rendered["detail"])
    )


def test_cyclosporine_review_the_cni_instead() -> None:
    finding = _persistent(THREE_LOW_OVER_28[0], cni="cyclosporine")
    assert finding.notes == ("on_cni", "cni_review")
    detail = card_of(finding)["detail"]
    assert "review the CNI with the transplant team" in detail
    assert "lower tacrolimus target" not in detail


def test_two_low_results_are_not_persistent() -> None:
    assert _persistent([mg(1.5, days_ago=40), mg(1.5, days_ago=2)]).notes == ("on_cni",)


def test_three_low_results_over_27_days_are_not_persistent() -> None:
    # 28 days ago to 1 day ago: 27 days between the first and the last.
    labs = [mg(1.5, days_ago=28), mg(1.4, days_ago=15), mg(1.5, days_ago=1)]
    assert _persistent(labs).notes == ("on_cni",)
    labs = [mg(1.5, days_ago=29), mg(1.4, days_ago=15), mg(1.5, days_ago=1)]
    assert _persistent(labs).notes == ("on_cni", "cni_persistent")


def test_supplement_started_after_the_first_low_does_not_count_it() -> None:
    # Started 20 days ago: only 2 of the 3 lows were on it.
    assert _persistent(THREE_LOW_OVER_28[0], started=20).notes == ("on_cni",)
    # Started 31 days ago, before the first low of 30 days ago: persistent.
    assert _persistent(THREE_LOW_OVER_28[0], started=31).notes == ("on_cni", "cni_persistent")


def test_a_normal_result_between_breaks_the_run() -> None:
    labs = [mg(1.5, days_ago=40), mg(1.5, days_ago=30), mg(1.9, days_ago=15), mg(1.5, days_ago=2)]
    assert _persistent(labs).notes == ("on_cni",)


def test_a_latest_result_just_under_the_target_keeps_the_run() -> None:
    # Three lows over 30 days, then 1.65 mg/dL (below the 1.7 target, not below 1.6): the
    # info card still says the supplement has not kept Mg up.
    labs = [mg(1.5, days_ago=45), mg(1.5, days_ago=30), mg(1.4, days_ago=15), mg(1.65, days_ago=2)]
    finding = _persistent(labs)
    assert finding.indicator == "info"
    assert finding.notes == ("on_cni", "cni_persistent")
    assert finding.values["low_count"] == 3


def test_a_laxative_is_not_the_supplement_of_the_persistent_note() -> None:
    meds = [rx("tacrolimus"), med("epsom_salt", authored_days_ago=60)]
    assert fire(HYPO, labs=THREE_LOW_OVER_28[0], meds=meds).notes == ("on_cni",)


def test_persistent_note_from_a_supplement_statement() -> None:
    finding = fire(
        HYPO,
        labs=THREE_LOW_OVER_28[0],
        meds=[rx("tacrolimus")],
        statements=[statement("mg_oxide", started_days_ago=60)],
    )
    assert finding.notes == ("on_cni", "cni_persistent")


def test_persistent_note_not_off_a_cni() -> None:
    meds = [rx("mg_oxide", authored_days_ago=60)]
    assert fire(HYPO, labs=THREE_LOW_OVER_28[0], meds=meds).notes == ()


# --- 4.3 thresholds come from settings --------------------------------------------------------


def test_thresholds_quoted_come_from_settings_in_the_result_unit_family() -> None:
    base = shipped().settings.thresholds
    changed = base.model_copy(update={"mg_low": Threshold(mmol_per_l=0.60, mg_per_dl=1.5)})
    content = with_settings(thresholds=changed)
    quiet(HYPO, labs=[mg(1.55)], content=content)  # no longer below the (changed) low line
    mass = card(HYPO, labs=[mg(1.45)], content=content)
    assert "(below 1.5 mg/dL)" in mass["detail"]
    molar = card(HYPO, labs=[mg(0.59, "mmol/L")], content=content)
    assert "(below 0.60 mmol/L)" in molar["detail"]


@pytest.mark.parametrize("source", ["request", "statement"])
def test_critical_on_oral_magnesium_says_so_and_orders_no_more_oral(source: str) -> None:
    # 4.3: supplement state changes the text in every tier, the critical one included.
    meds = [rx("mg_oxide")] if source == "request" else []
    statements = [statement("mg_oxide")] if source == "statement" else []
    finding = fire(HYPO, labs=[mg(1.0)], meds=meds, statements=statements)
    assert finding.indicator == "critical"
    assert finding.advice is not None
    assert finding.advice.action == "iv_give"
    assert finding.advice.lines == ("iv_adult", "iv_on_oral")
    rendered = card_of(finding)
    assert rendered["summary"] == (
        "Mg 1.0 mg/dL on 2026-11-19 is critically low: give IV magnesium sulfate "
        "(already on magnesium oxide)"
    )
    assert (
        "- Already on Magnesium Oxide 400 MG Oral Tablet: it has not kept Mg up; once Mg is "
        "back up, review the oral dose and adherence (001; 003)."
    ) in rendered["detail"]
    assert ORAL_CODE not in suggested_codes(rendered)
