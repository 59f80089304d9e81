"""Alert economy: whether a card should be withheld because the clinician already said no.

Pure functions of the overrides read from the store, so every rule is testable without one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.exc import SQLAlchemyError

from ._logging import get_logger

if TYPE_CHECKING:
    from .content import Content
    from .rules import Finding
    from .store import OverrideRecord

_log = get_logger(__name__)

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


# Decides whether a finding is withheld (snooze, order-session coordination); returns the reason.
Suppressor = Callable[["Finding"], str | None]


class OverrideSource(Protocol):
    """Where past overrides are read from: the store, or a fake in tests."""

    def overrides_for(
        self, patient_hash: str, topics: Collection[str], since: datetime
    ) -> Sequence[OverrideRecord]: ...


@dataclass(frozen=True, slots=True)
class SnoozePolicy:
    """The site's snooze settings: hours per topic, and the order-select → order-sign window."""

    hours: Mapping[str, float]
    session_window: timedelta

    @classmethod
    def from_content(cls, content: Content) -> SnoozePolicy:
        return cls(
            hours={
                code: topic.topic.snooze_hours
                for code, topic in content.topics.items()
                if topic.topic.snooze_hours
            },
            session_window=timedelta(minutes=content.settings.windows.order_session_minutes),
        )

    def reads_overrides(self, service_id: str) -> bool:
        """Whether a call to ``service_id`` needs this patient's past overrides at all."""
        return bool(self.hours) or service_id == ORDER_SIGN

    def suppressor(
        self,
        source: OverrideSource,
        *,
        topics: Collection[str],
        service_id: str,
        patient_hash: str,
        now: datetime,
        order_key: Callable[[Finding], str | None],
    ) -> Suppressor:
        """Withholds findings this patient's recent overrides silence; one read, only if needed."""
        longest = max([timedelta(hours=h) for h in self.hours.values()] + [self.session_window])
        read: list[Sequence[OverrideRecord]] = []

        def suppress(finding: Finding) -> str | None:
            if not read:  # one query per request, only once a card is about to be shown
                read.append(_recent_overrides(source, patient_hash, topics, now - longest))
            hours = self.hours.get(finding.topic)
            snoozed = is_snoozed(
                finding.topic,
                finding.indicator,
                overrides=read[0],
                snooze=timedelta(hours=hours) if hours else None,
                now=now,
                service_id=service_id,
                order_key=order_key(finding),
                session_window=self.session_window,
            )
            return "overridden recently for this patient" if snoozed else None

        return suppress


def _recent_overrides(
    source: OverrideSource, patient_hash: str, topics: Collection[str], since: datetime
) -> Sequence[OverrideRecord]:
    try:
        return source.overrides_for(patient_hash, topics, since)
    except (SQLAlchemyError, OSError) as exc:
        # Snoozing is a courtesy, the card is not: without the overrides, withhold nothing.
        _log.warning("snooze.unavailable", error=type(exc).__name__)
        return ()


__all__ = [
    "DEFAULT_SESSION_WINDOW",
    "ORDER_SELECT",
    "ORDER_SIGN",
    "OverrideSource",
    "SnoozePolicy",
    "Suppressor",
    "indicator_rank",
    "is_snoozed",
]
