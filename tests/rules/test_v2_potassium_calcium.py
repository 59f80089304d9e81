"""4.1 Never delay potassium or calcium: Mg alongside, never instead (refractory K and Ca cards).

Both sides of every line, in every unit the item touches: K in mmol/L and mEq/L; Mg in mg/dL,
mmol/L and mEq/L; ionized Ca in mmol/L, mg/dL and mEq/L; corrected total Ca in mg/dL and mmol/L.
Missing, stale and entered-in-error Mg results count as "no current Mg".
"""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.rules import Suggestion
from tests.facts.builders import albumin, calcium, ionized_ca, mg, potassium, rx

from .kit import card, card_of, fire, labels, mg_hours_ago, order, quiet, suggested_codes, text

K_CARD = "mg-refractory-hypokalemia"
CA_CARD = "mg-refractory-hypocalcemia"
CHECK_MG = Suggestion("lab", ("magnesium",), "Check Mg now, alongside treating K or Ca")
RECHECK_MG = Suggestion("lab", ("magnesium",), "Recheck Mg now: the last result was critically low")

# A low (not critical) Mg, a critical one, and one exactly at the low line, in each unit.
LOW_MG = [(1.5, "mg/dL"), (0.62, "mmol/L"), (1.24, "mEq/L")]
CRITICAL_MG = [(1.1, "mg/dL"), (0.45, "mmol/L"), (0.9, "mEq/L")]
AT_LOW_LINE = [(1.6, "mg/dL"), (0.66, "mmol/L"), (1.32, "mEq/L")]


def _no_current_mg() -> list[tuple[str, list[dict[str, Any]]]]:
    return [
        ("missing", []),
        ("stale", [mg(1.1, days_ago=31)]),
        ("entered-in-error", [mg(1.1, status="entered-in-error")]),
    ]


NO_MG_CASES = ["missing", "stale", "entered-in-error"]


# --- potassium: the lines at 3.5 and 3.0 -----------------------------------------------------


@pytest.mark.parametrize("k_unit", ["mmol/L", "mEq/L"])
def test_k_exactly_at_3_5_is_not_low(k_unit: str) -> None:
    assert quiet(K_CARD, labs=[potassium(3.5, k_unit), mg(1.5)]) == f"K 3.5 {k_unit} is not low"
    assert fire(K_CARD, labs=[potassium(3.49, k_unit), mg(1.5)]).indicator == "warning"


@pytest.mark.parametrize(("mg_value", "mg_unit"), LOW_MG)
@pytest.mark.parametrize("k_unit", ["mmol/L", "mEq/L"])
def test_k_below_3_5_with_low_mg_gives_mg_alongside_k(
    k_unit: str, mg_value: float, mg_unit: str
) -> None:
    finding = fire(K_CARD, labs=[potassium(3.0, k_unit), mg(mg_value, mg_unit)])
    assert finding.indicator == "warning"
    assert finding.values["treat_now"] is False  # 3.0 is not below 3.0
    rendered = card_of(finding)
    assert rendered["summary"] == (
        f"K 3.0 {k_unit} may not correct until Mg is repleted; Mg {mg_value} {mg_unit}: "
        "give Mg alongside K"
    )
    assert "K may not correct until Mg is repleted, so give Mg alongside K" in rendered["detail"]
    assert "Treat potassium now" not in rendered["detail"]


@pytest.mark.parametrize(("mg_value", "mg_unit"), LOW_MG + CRITICAL_MG)
@pytest.mark.parametrize("k_unit", ["mmol/L", "mEq/L"])
def test_k_below_3_with_low_mg_treat_potassium_now_and_give_mg_alongside(
    k_unit: str, mg_value: float, mg_unit: str
) -> None:
    finding = fire(K_CARD, labs=[potassium(2.99, k_unit), mg(mg_value, mg_unit)])
    assert finding.indicator == "critical"
    assert finding.values["treat_now"] is True
    rendered = card_of(finding)
    assert rendered["summary"].startswith(
        f"K 2.99 {k_unit}: treat potassium now and give Mg alongside; Mg {mg_value} {mg_unit}"
    )
    assert f"**Treat potassium now**: K 2.99 {k_unit} on 2026-11-19." in rendered["detail"]
    assert "Do not wait for a Mg result" not in rendered["detail"]


@pytest.mark.parametrize("case", NO_MG_CASES)
@pytest.mark.parametrize("k_unit", ["mmol/L", "mEq/L"])
def test_k_below_3_with_no_current_mg_treat_now_and_do_not_wait(k_unit: str, case: str) -> None:
    labs = dict(_no_current_mg())[case]
    finding = fire(K_CARD, labs=[potassium(2.8, k_unit), *labs])
    assert finding.indicator == "warning"  # critical needs a low Mg
    assert finding.values["mg"] == ""
    assert finding.suggestions == (CHECK_MG,)
    assert finding.advice is None
    rendered = card_of(finding)
    assert rendered["summary"] == (
        f"K 2.8 {k_unit}: treat potassium now; do not wait for a Mg result, check Mg alongside"
    )
    assert "Do not wait for a Mg result." in rendered["detail"]
    assert labels(rendered) == ["Order a serum magnesium"]
    assert suggested_codes(rendered) == ["19123-9"]


@pytest.mark.parametrize("case", NO_MG_CASES)
def test_low_k_above_3_with_no_current_mg_asks_for_mg_alongside(case: str) -> None:
    labs = dict(_no_current_mg())[case]
    rendered = card(K_CARD, labs=[potassium(3.2), *labs])
    assert rendered["indicator"] == "warning"
    assert rendered["summary"] == (
        "K 3.2 mmol/L is low with no current Mg: check Mg; low Mg keeps K from correcting"
    )
    assert "No Mg result in the last 30 days: check Mg alongside treating K." in rendered["detail"]


@pytest.mark.parametrize(("mg_value", "mg_unit"), AT_LOW_LINE)
def test_mg_exactly_at_the_low_line_is_not_low(mg_value: float, mg_unit: str) -> None:
    why = quiet(K_CARD, labs=[potassium(2.8), mg(mg_value, mg_unit)])
    assert why == f"K 2.8 mmol/L is low but Mg {mg_value} {mg_unit} is not"


@pytest.mark.parametrize(("mg_value", "mg_unit"), CRITICAL_MG)
def test_critical_mg_within_72_hours_gives_iv_alongside_k(mg_value: float, mg_unit: str) -> None:
    finding = fire(K_CARD, labs=[potassium(2.8), mg_hours_ago(mg_value, mg_unit, 72)])
    assert finding.indicator == "critical"
    assert finding.advice is not None
    assert finding.advice.action == "iv_give"
    assert finding.advice.suggestion == Suggestion("medication", ("iv_magnesium",))


@pytest.mark.parametrize(("mg_value", "mg_unit"), CRITICAL_MG)
@pytest.mark.parametrize("topic", [K_CARD, CA_CARD])
def test_critical_mg_older_than_72_hours_is_rechecked_not_treated_iv(
    topic: str, mg_value: float, mg_unit: str
) -> None:
    # 4.3: severity needs a recent result; a critical result older than 72 h asks for a recheck,
    # never IV magnesium (as the hypomagnesemia card for the same result says).
    labs = [potassium(2.8), ionized_ca(0.95), mg_hours_ago(mg_value, mg_unit, 73)]
    finding = fire(topic, labs=labs)
    assert finding.indicator == "warning"
    assert finding.advice is None
    assert finding.suggestions == (RECHECK_MG,)
    rendered = card_of(finding)
    assert "1-2 g IV" not in rendered["detail"]
    treating = "K" if topic == K_CARD else "calcium"
    assert (
        f"- The last Mg, {mg_value} {mg_unit} on 2026-11-17, was critically low but is more "
        "than 72 h old, too long ago to dose IV magnesium on: recheck Mg now, alongside "
        f"treating {treating} (003)."
    ) in rendered["detail"]
    assert labels(rendered) == ["Order a serum magnesium"]
    assert fire("hypomagnesemia", labs=labs).values["stale"] is True


def test_k_low_with_low_mg_older_than_72_hours_is_a_warning() -> None:
    # Critical needs a Mg result no older than 72 h (4.3): a 10-day-old low Mg gives a warning
    # that still says to treat potassium now.
    finding = fire(K_CARD, labs=[potassium(2.8), mg(1.5, days_ago=10)])
    assert finding.indicator == "warning"
    rendered = card_of(finding)
    assert rendered["summary"].startswith("K 2.8 mmol/L: treat potassium now and give Mg alongside")
    assert finding.advice is not None
    assert finding.advice.action == "oral_start"


def test_k_card_on_order_hooks_shows_for_the_k_order_with_the_same_wording() -> None:
    rendered = card(
        K_CARD, "order-sign", labs=[potassium(2.9), mg(1.4)], drafts=[order("kcl", req_id="k")]
    )
    assert rendered["indicator"] == "critical"
    assert "treat potassium now and give Mg alongside" in rendered["summary"]


# --- calcium: ionized 1.15 / 1.0 mmol/L, corrected total 8.5 / 7.5 mg/dL, IV calcium ---------


@pytest.mark.parametrize(
    ("value", "unit", "low", "treat_now"),
    [
        (1.15, "mmol/L", False, False),
        (1.14, "mmol/L", True, False),
        (1.0, "mmol/L", True, False),
        (0.99, "mmol/L", True, True),
        (4.6, "mg/dL", False, False),
        (4.59, "mg/dL", True, False),
        (4.0, "mg/dL", True, False),
        (3.99, "mg/dL", True, True),
        (2.3, "mEq/L", False, False),
        (2.28, "mEq/L", True, False),
        (2.0, "mEq/L", True, False),
        (1.98, "mEq/L", True, True),
    ],
)
def test_ionized_calcium_lines_in_every_unit(
    value: float, unit: str, low: bool, treat_now: bool
) -> None:
    labs = [ionized_ca(value, unit), mg(1.5)]
    if not low:
        assert quiet(CA_CARD, labs=labs) == f"ionized Ca {value} {unit} is not low"
        return
    finding = fire(CA_CARD, labs=labs)
    assert finding.values["ca_label"] == "Ionized Ca"
    assert finding.values["treat_now"] is treat_now
    rendered = card_of(finding)
    if treat_now:
        assert rendered["summary"].startswith(
            f"Ionized Ca {value} {unit}: treat calcium now and give Mg alongside"
        )
        assert "**Treat calcium now**." in rendered["detail"]
    else:
        assert rendered["summary"] == (
            f"Ionized Ca {value} {unit} is low. Mg 1.5 mg/dL may contribute: give Mg alongside Ca"
        )
    assert "Low Mg may contribute (it impairs PTH secretion" in rendered["detail"]


@pytest.mark.parametrize(
    ("value", "unit", "low", "treat_now"),
    [
        (8.5, "mg/dL", False, False),
        (8.49, "mg/dL", True, False),
        (7.5, "mg/dL", True, False),
        (7.49, "mg/dL", True, True),
        (2.12, "mmol/L", False, False),
        (2.11, "mmol/L", True, False),
        (1.87, "mmol/L", True, False),
        (1.86, "mmol/L", True, True),
    ],
)
def test_total_calcium_lines_without_albumin(
    value: float, unit: str, low: bool, treat_now: bool
) -> None:
    labs = [calcium(value, unit), mg(0.6, "mmol/L")]
    if not low:
        quiet(CA_CARD, labs=labs)
        return
    finding = fire(CA_CARD, labs=labs)
    assert finding.values["ca_label"] == "Ca"
    assert finding.values["ca"] == f"{value} {unit}"
    assert finding.values["treat_now"] is treat_now


def test_corrected_calcium_below_7_5_mg_dl_is_treat_now() -> None:
    # 7.0 + 0.8 x (4.0 - 3.4) = 7.48 mg/dL: below 7.5; 7.1 with the same albumin is 7.58.
    below = fire(CA_CARD, labs=[calcium(7.0), albumin(3.4), mg(1.5)])
    assert below.values["ca_label"] == "Corrected Ca"
    assert below.values["treat_now"] is True
    above = fire(CA_CARD, labs=[calcium(7.1), albumin(3.4), mg(1.5)])
    assert above.values["treat_now"] is False


@pytest.mark.parametrize("case", NO_MG_CASES)
def test_critical_calcium_with_no_current_mg_treat_now_do_not_wait(case: str) -> None:
    labs = dict(_no_current_mg())[case]
    finding = fire(CA_CARD, labs=[ionized_ca(0.95), *labs])
    assert finding.suggestions == (CHECK_MG,)
    rendered = card_of(finding)
    assert rendered["summary"] == (
        "Ionized Ca 0.95 mmol/L: treat calcium now; do not wait for a Mg result, check Mg alongside"
    )
    assert "**Treat calcium now**: do not wait for a Mg result." in rendered["detail"]


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_iv_calcium_being_ordered_is_treat_calcium_now(hook: str) -> None:
    # Ionized Ca 1.1 mmol/L is low but not critical: the IV calcium order makes it "treat now".
    finding = fire(
        CA_CARD, hook, labs=[ionized_ca(1.1)], drafts=[order("ca_gluconate_iv", req_id="cag")]
    )
    assert finding.values["treat_now"] is True
    assert finding.values["iv_calcium"] == "calcium gluconate 100 MG/ML Injectable Solution"
    assert finding.order_ids == ("MedicationRequest/cag",)
    rendered = card_of(finding)
    assert rendered["summary"] == (
        "Ionized Ca 1.1 mmol/L: treat calcium now; do not wait for a Mg result, check Mg alongside"
    )
    assert (
        "**Treat calcium now** (calcium gluconate 100 MG/ML Injectable Solution is being "
        "ordered): do not wait for a Mg result."
    ) in rendered["detail"]


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_oral_calcium_being_ordered_is_not_treat_now(hook: str) -> None:
    finding = fire(CA_CARD, hook, labs=[ionized_ca(1.1)], drafts=[order("ca_carbonate")])
    assert finding.values["treat_now"] is False
    assert finding.values["iv_calcium"] == ""


def test_calcium_card_with_normal_mg_does_not_fire() -> None:
    assert (
        quiet(CA_CARD, labs=[ionized_ca(0.9), mg(1.6)])
        == "Ionized Ca 0.9 mmol/L is low but Mg is not"
    )


def test_no_card_tells_to_replete_mg_before_k_or_ca() -> None:
    # Every wording of both cards, rendered: card_of() checks the forbidden phrases.
    cases: list[tuple[str, list[dict[str, Any]]]] = [
        (K_CARD, [potassium(2.8), mg(1.1)]),
        (K_CARD, [potassium(3.2), mg(1.5)]),
        (K_CARD, [potassium(2.8)]),
        (K_CARD, [potassium(3.3)]),
        (CA_CARD, [ionized_ca(0.9), mg(1.1)]),
        (CA_CARD, [ionized_ca(1.1), mg(1.5)]),
        (CA_CARD, [ionized_ca(0.9)]),
        (CA_CARD, [ionized_ca(1.1)]),
    ]
    for topic, labs in cases:
        rendered = card(topic, labs=labs, meds=[rx("tacrolimus")])
        folded = text(rendered).casefold()
        assert "before" not in folded or "before repeating" in folded, rendered
        assert "first" not in folded, rendered
