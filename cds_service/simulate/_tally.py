"""Counts one content version's answers; tallies of buckets are merged into the summary."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

# Card summaries quote the patient's values and dates; the reason a card fired is its summary
# with those replaced, so cards that fired for the same reason count together whatever unit the
# laboratory reported in (and the report carries no patient's values).
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?\b")
_UNIT = r"(?:mg/dl|mg/l|mmol/l|meq/l|[µu]mol/l|g/dl|g/l|ng/ml|ml/min(?:/1\.73\s?m2)?)"
_NUMBER = re.compile(
    rf"(?<![\w.])[<>≤≥]?\s?\d+(?:[.,]\d+)?(?![\w.]*\d)(?:\s?{_UNIT}(?![\w/]))?", re.IGNORECASE
)


def reason_of(summary: str) -> str:
    return _NUMBER.sub("#", _DATE.sub("DATE", summary))


@dataclass
class Tally:
    calls: Counter[str] = field(default_factory=Counter)
    """Hook calls made, by hook."""
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Calls answered with an error instead of cards: (hook, HTTP status or exception type)."""
    cards: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """Cards returned: (hook, topic, indicator)."""
    silent: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """Cards evaluated but not returned (topics in silent mode): (hook, topic, indicator)."""
    reasons: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(topic, indicator, summary with values and dates replaced)."""
    patients: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Patients with at least one card of (topic, indicator), on any hook, shown or silent."""
    topic_patients: Counter[str] = field(default_factory=Counter)
    patients_with_cards: int = 0
    views_with_cards: int = 0
    """Patient-views that returned at least one card."""
    orders: int = 0
    """MedicationRequests replayed as draft orders."""
    sessions: int = 0
    """Ordering sessions (orders signed together): one order-sign each."""

    def merge(self, other: Tally) -> None:
        self.calls.update(other.calls)
        self.errors.update(other.errors)
        self.cards.update(other.cards)
        self.silent.update(other.silent)
        self.reasons.update(other.reasons)
        self.patients.update(other.patients)
        self.topic_patients.update(other.topic_patients)
        self.patients_with_cards += other.patients_with_cards
        self.views_with_cards += other.views_with_cards
        self.orders += other.orders
        self.sessions += other.sessions
