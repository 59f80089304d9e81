"""The store's public value types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CardRecord:
    """One card as sent: what feedback and the snooze policy need to know about it later.

    ``suggestion_labels`` is optional and parallel to ``suggestion_uuids``; when given, the
    report counts suggestions by label (stable across cards) rather than by per-card uuid.
    """

    card_uuid: str
    suggestion_uuids: tuple[str, ...]
    service_id: str
    hook: str
    topic: str
    indicator: str
    hook_instance: str
    patient_hash: str
    order_key: str | None
    created_at: datetime
    suggestion_labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OverrideRecord:
    """An overridden card for one patient, as the snooze policy sees it."""

    topic: str
    indicator: str
    service_id: str
    order_key: str | None
    overridden_at: datetime


@dataclass(frozen=True, slots=True)
class StoredFeedback:
    """What one feedback POST changed: new rows, repeats of stored items, and unknown cards."""

    stored: int
    duplicates: int
    unknown_cards: int
