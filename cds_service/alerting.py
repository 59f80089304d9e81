"""Alert economy: whether a card should be withheld because the clinician already said no.

Pure functions of the overrides read from the store, so every rule is testable without one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import OverrideRecord

ORDER_SELECT = "mg-order-select"
ORDER_SIGN = "mg-order-sign"
DEFAULT_SESSION_WINDOW = timedelta(hours=2)

_RANK = {"info": 0, "warning": 1, "critical": 2}


def indicator_rank(indicator: str, *, unknown: int) -> int:
    return _RANK.get(indicator, unknown)


def _not_higher(indicator: str, overridden: OverrideRecord) -> bool:
    # Unknown indicators fail open: an unknown new one outranks, an unknown old one ranks last.
    new = indicator_rank(indicator, unknown=len(_RANK))
    old = indicator_rank(overridden.indicator, unknown=-1)
    return new <= old


def _within(overridden: OverrideRecord, window: timedelta, now: datetime) -> bool:
    return now - window <= overridden.overridden_at


def _snoozed_by_topic(
    topic: str,
    indicator: str,
    overrides: Sequence[OverrideRecord],
    snooze: timedelta | None,
    now: datetime,
) -> bool:
    if snooze is None or snooze <= timedelta(0):
        return False
    return any(
        o.topic == topic and _within(o, snooze, now) and _not_higher(indicator, o)
        for o in overrides
    )


def _settled_at_order_select(
    topic: str,
    indicator: str,
    overrides: Sequence[OverrideRecord],
    *,
    service_id: str,
    order_key: str | None,
    session_window: timedelta,
    now: datetime,
) -> bool:
    """The same order's card, overridden at order-select in this session, is not asked again."""
    if service_id != ORDER_SIGN or order_key is None:
        return False
    return any(
        o.service_id == ORDER_SELECT
        and o.topic == topic
        and o.order_key == order_key
        and _within(o, session_window, now)
        and _not_higher(indicator, o)
        for o in overrides
    )


def is_snoozed(
    topic: str,
    indicator: str,
    *,
    overrides: Sequence[OverrideRecord],
    snooze: timedelta | None,
    now: datetime,
    service_id: str,
    order_key: str | None,
    session_window: timedelta = DEFAULT_SESSION_WINDOW,
) -> bool:
    """True if a card of ``topic`` at ``indicator`` should be withheld for this patient.

    ``overrides`` are this patient's overridden cards. Two independent rules:

    * snooze (per topic, off when ``snooze`` is None): an override of the topic within
      ``snooze`` silences the same or a lower indicator; a higher one breaks through;
    * order-select → order-sign: a card overridden at order-select for the same orders
      (``order_key``) within ``session_window`` is not repeated at order-sign, unless higher.
    """
    return _snoozed_by_topic(topic, indicator, overrides, snooze, now) or _settled_at_order_select(
        topic,
        indicator,
        overrides,
        service_id=service_id,
        order_key=order_key,
        session_window=session_window,
        now=now,
    )


__all__ = ["DEFAULT_SESSION_WINDOW", "ORDER_SELECT", "ORDER_SIGN", "indicator_rank", "is_snoozed"]
