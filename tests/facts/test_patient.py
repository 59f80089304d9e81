"""The patient (contract 4.5): age at the time of the request, and a body weight no older than
``weight_max_age_days`` (30) in kg, g or pounds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cds_service.facts import Facts
from cds_service.rules import RuleConfig, plan_magnesium

from .builders import (
    BODY_WEIGHT,
    body_weight,
    make_facts,
    observation,
    patient,
    shipped,
    value_string,
    with_settings,
)

# --- age --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth_date", "age", "child"),
    [
        ("2008-11-20", 18, False),  # the 18th birthday is today: an adult
        ("2008-11-21", 17, True),  # 18 tomorrow: still a child
        ("2008-11-19", 18, False),
        ("2009-06-01", 17, True),
        ("2024-01-01", 2, True),
        ("1940-11-21", 85, False),
    ],
)
def test_age_at_the_request(birth_date: str, age: int, child: bool) -> None:
    facts = make_facts(pat=patient(birth_date))
    assert (facts.age_years, facts.child) == (age, child)


@pytest.mark.parametrize(
    ("now", "age"),
    [
        (datetime(2026, 2, 28, 12, tzinfo=UTC), 17),
        (datetime(2026, 3, 1, 0, 0, tzinfo=UTC), 18),
    ],
)
def test_a_leap_day_birthday(now: datetime, age: int) -> None:
    facts = make_facts(pat=patient("2008-02-29"), now=now)
    assert (facts.age_years, facts.child) == (age, age < 18)


@pytest.mark.parametrize("birth_date", [None, "2015", "2015-06", "not a date"])
def test_no_age_known_is_not_a_child(birth_date: str | None) -> None:
    # 4.5: with no age known the card keeps its adult text.
    facts = make_facts(pat=patient(birth_date))
    assert (facts.age_years, facts.child) == (None, False)


def test_no_patient_resource_is_not_a_child() -> None:
    facts = make_facts(no_patient=True)
    assert (facts.birth_date, facts.age_years, facts.child) == (None, None, False)


def test_the_adult_age_is_a_setting() -> None:
    dosing = shipped().settings.dosing.model_copy(update={"adult_age_years": 21})
    content = with_settings(dosing=dosing)
    assert make_facts(pat=patient("2006-01-01"), content=content).child is True
    assert make_facts(pat=patient("2005-11-20"), content=content).child is False


# --- body weight ------------------------------------------------------------------------------


def child_range(facts: Facts) -> str:
    plan = plan_magnesium(facts, RuleConfig.from_content(shipped()), "iv")
    assert plan.action == "iv_child"
    return str(plan.values["child_range"])


CHILD = patient("2019-04-02", "male")  # 7 years old


@pytest.mark.parametrize(
    ("value", "unit", "kg", "shown", "mg_range"),
    [
        (18, "kg", 18, "18 kg", "450-900 mg"),
        (18.4, "kg", 18.4, "18.4 kg", "460-920 mg"),
        (18000, "g", 18, "18000 g", "450-900 mg"),
        (40, "[lb_av]", 18.1436948, "40 [lb_av]", "454-907 mg"),
        (40, "lb", 18.1436948, "40 lb", "454-907 mg"),
        (50, "kg", 50, "50 kg", "1250-2000 mg"),  # capped at 2 g
    ],
)
def test_body_weight_in_every_unit(
    value: float, unit: str, kg: float, shown: str, mg_range: str
) -> None:
    facts = make_facts(pat=CHILD, labs=[body_weight(value, unit, days_ago=3)])
    assert facts.weight is not None
    assert facts.weight.canonical == pytest.approx(kg)
    assert facts.weight.shown == shown
    assert facts.weight.day == "2026-11-17"
    assert child_range(facts) == mg_range


def test_pounds_as_unit_text_without_ucum() -> None:
    resource = observation(BODY_WEIGHT, 40, "lbs", system=None)
    facts = make_facts(pat=CHILD, labs=[resource])
    assert facts.weight is not None and facts.weight.canonical == pytest.approx(18.1436948)


def test_body_weight_in_value_string() -> None:
    facts = make_facts(pat=CHILD, labs=[value_string(BODY_WEIGHT, "18 kg")])
    assert facts.weight is not None and facts.weight.canonical == 18


@pytest.mark.parametrize("unit", ["oz", "stone", "cm"])
def test_body_weight_in_another_unit_is_not_used(unit: str) -> None:
    facts = make_facts(pat=CHILD, labs=[body_weight(40, unit, obs_id="w")])
    assert facts.weight is None
    assert [(s.analyte, s.reason, s.unit) for s in facts.skipped] == [
        ("body_weight", "unrecognised unit", unit)
    ]
    assert child_range(facts) == ""


@pytest.mark.parametrize(
    ("effective", "used"),
    [
        ("2026-11-20T11:00:00Z", True),
        ("2026-10-21T12:00:00Z", True),  # exactly 30 days before the request
        ("2026-10-21T11:59:00Z", False),  # a minute older
        ("2026-09-01T08:00:00Z", False),
    ],
)
def test_body_weight_no_older_than_30_days(effective: str, used: bool) -> None:
    facts = make_facts(pat=CHILD, labs=[body_weight(18, effective=effective)])
    assert (facts.weight is not None) is used
    assert child_range(facts) == ("450-900 mg" if used else "")


def test_the_newest_body_weight_is_used() -> None:
    labs = [body_weight(16, days_ago=20), body_weight(18, days_ago=2), body_weight(17, days_ago=9)]
    facts = make_facts(pat=CHILD, labs=labs)
    assert facts.weight is not None and facts.weight.value == 18


def test_only_stale_weights_give_no_weight() -> None:
    facts = make_facts(pat=CHILD, labs=[body_weight(18, days_ago=40), body_weight(15, days_ago=90)])
    assert facts.weight is None


def test_the_weight_window_is_a_setting() -> None:
    content = with_settings(
        windows=shipped().settings.windows.model_copy(update={"weight_max_age_days": 60})
    )
    facts = make_facts(pat=CHILD, labs=[body_weight(18, days_ago=40)], content=content)
    assert facts.weight is not None and facts.weight.value == 18


def test_an_adult_with_a_weight_keeps_the_adult_plan() -> None:
    facts = make_facts(pat=patient("1980-01-01"), labs=[body_weight(70)])
    plan = plan_magnesium(facts, RuleConfig.from_content(shipped()), "iv")
    assert plan.action == "iv_give"


def _weights(facts: Facts) -> list[Any]:
    return [r.value for r in facts.results("body_weight")]


def test_a_future_weight_beyond_clock_skew_is_ignored() -> None:
    facts = make_facts(pat=CHILD, labs=[body_weight(18, effective="2026-11-22T08:00:00Z")])
    assert (facts.weight, _weights(facts)) == (None, [])
