"""The snooze policy: per-topic snooze, break-through, expiry, and order-select → order-sign."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cds_service.alerting import DEFAULT_SESSION_WINDOW, is_snoozed
from cds_service.store import OverrideRecord

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TOPIC = "hypomagnesemia"
DAY = timedelta(hours=24)
INDICATORS = ["info", "warning", "critical"]


def override(
    indicator: str = "warning",
    *,
    ago: timedelta = timedelta(hours=1),
    topic: str = TOPIC,
    service_id: str = "mg-patient-view",
    order_key: str | None = None,
) -> OverrideRecord:
    return OverrideRecord(topic, indicator, service_id, order_key, NOW - ago)


def snoozed(
    indicator: str,
    overrides: list[OverrideRecord],
    *,
    snooze: timedelta | None = DAY,
    topic: str = TOPIC,
    service_id: str = "mg-patient-view",
    order_key: str | None = None,
    now: datetime = NOW,
) -> bool:
    return is_snoozed(
        topic,
        indicator,
        overrides=overrides,
        snooze=snooze,
        now=now,
        service_id=service_id,
        order_key=order_key,
        session_window=DEFAULT_SESSION_WINDOW,
    )


# -- per-topic snooze ----------------------------------------------------------------------


def test_off_by_default_an_override_does_not_snooze() -> None:
    assert not snoozed("warning", [override("warning")], snooze=None)


def test_a_zero_snooze_is_off() -> None:
    assert not snoozed("warning", [override("warning")], snooze=timedelta(0))


def test_on_an_override_snoozes_the_same_indicator() -> None:
    assert snoozed("warning", [override("warning")])


def test_on_an_override_snoozes_a_lower_indicator() -> None:
    assert snoozed("info", [override("warning")])
    assert snoozed("info", [override("critical")])
    assert snoozed("warning", [override("critical")])


@pytest.mark.parametrize(
    ("overridden", "now_shown"),
    [("info", "warning"), ("warning", "critical"), ("info", "critical")],
)
def test_a_higher_indicator_breaks_through(overridden: str, now_shown: str) -> None:
    assert not snoozed(now_shown, [override(overridden)])


def test_the_snooze_expires() -> None:
    assert snoozed("warning", [override(ago=DAY)]), "the window includes its edge"
    assert not snoozed("warning", [override(ago=DAY + timedelta(seconds=1))])


def test_only_the_same_topic_snoozes() -> None:
    assert not snoozed("warning", [override(topic="antacid-tacrolimus")])


def test_snooze_applies_across_services() -> None:
    overrides = [override(service_id="mg-order-select")]
    assert snoozed("warning", overrides, service_id="mg-patient-view")
    assert snoozed("warning", overrides, service_id="mg-order-sign", order_key="other")


def test_any_qualifying_override_is_enough() -> None:
    overrides = [
        override("info", ago=timedelta(hours=2)),
        override("critical", ago=timedelta(days=3)),
    ]
    assert snoozed("info", overrides)
    assert not snoozed("warning", overrides), "the critical override has expired"


def test_no_overrides_no_snooze() -> None:
    assert not snoozed("info", [])


def test_unknown_indicators_fail_open() -> None:
    assert not snoozed("hard-stop", [override("critical")]), "an unknown new indicator shows"
    assert not snoozed("info", [override("mystery")]), "an unknown old indicator silences nothing"


# -- order-select → order-sign coordination --------------------------------------------------


def select_override(
    indicator: str = "warning", *, ago: timedelta = timedelta(minutes=10), key: str = "k1"
) -> OverrideRecord:
    return override(indicator, ago=ago, service_id="mg-order-select", order_key=key)


def at_sign(indicator: str, overrides: list[OverrideRecord], *, key: str | None = "k1") -> bool:
    return snoozed(indicator, overrides, snooze=None, service_id="mg-order-sign", order_key=key)


def test_a_card_overridden_at_order_select_is_not_repeated_at_order_sign() -> None:
    assert at_sign("warning", [select_override()])
    assert at_sign("info", [select_override("warning")])


def test_coordination_needs_the_same_orders() -> None:
    assert not at_sign("warning", [select_override(key="k2")])
    assert not at_sign("warning", [select_override()], key=None)


def test_coordination_is_only_from_order_select_to_order_sign() -> None:
    from_view = override(service_id="mg-patient-view", order_key="k1")
    assert not at_sign("warning", [from_view])
    assert not snoozed(
        "warning", [select_override()], snooze=None, service_id="mg-order-select", order_key="k1"
    )
    assert not snoozed(
        "warning", [select_override()], snooze=None, service_id="mg-patient-view", order_key="k1"
    )


def test_coordination_needs_the_same_topic() -> None:
    other = OverrideRecord("antacid-tacrolimus", "warning", "mg-order-select", "k1", NOW)
    assert not at_sign("warning", [other])


def test_a_higher_indicator_at_order_sign_breaks_through() -> None:
    assert not at_sign("critical", [select_override("warning")])


def test_coordination_lasts_the_session_window() -> None:
    assert at_sign("warning", [select_override(ago=DEFAULT_SESSION_WINDOW)])
    assert not at_sign(
        "warning", [select_override(ago=DEFAULT_SESSION_WINDOW + timedelta(seconds=1))]
    )


def test_coordination_works_with_snooze_off_and_on() -> None:
    long_ago = select_override(ago=timedelta(hours=5))
    assert not at_sign("warning", [long_ago]), "outside the session, snooze off: shown"
    assert snoozed("warning", [long_ago], snooze=DAY, service_id="mg-order-sign", order_key="k1")


def test_a_custom_session_window() -> None:
    overrides = [select_override(ago=timedelta(minutes=45))]
    kwargs = {
        "overrides": overrides,
        "snooze": None,
        "now": NOW,
        "service_id": "mg-order-sign",
        "order_key": "k1",
    }
    assert is_snoozed(TOPIC, "warning", session_window=timedelta(hours=1), **kwargs)  # type: ignore[arg-type]
    assert not is_snoozed(TOPIC, "warning", session_window=timedelta(minutes=30), **kwargs)  # type: ignore[arg-type]


@given(
    st.sampled_from(INDICATORS),
    st.sampled_from(INDICATORS),
    st.integers(min_value=0, max_value=72 * 60),
    st.integers(min_value=1, max_value=48),
)
def test_snooze_matches_its_definition(
    shown: str, overridden: str, minutes_ago: int, hours: int
) -> None:
    record = override(overridden, ago=timedelta(minutes=minutes_ago))
    expected = minutes_ago <= hours * 60 and INDICATORS.index(shown) <= INDICATORS.index(overridden)
    assert snoozed(shown, [record], snooze=timedelta(hours=hours)) is expected
