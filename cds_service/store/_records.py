"""The store's public value types."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


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
    # Governance: which content produced the card, who asked (keyed hash), through which client.
    content_version: str | None = None
    content_fingerprint: str | None = None
    user_hash: str | None = None
    iss: str | None = None
    tenant: str | None = None
    silent: bool = False
    """Evaluated for a topic in silent mode: recorded, never sent to the EHR."""


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


@dataclass(frozen=True, slots=True)
class ShownCard:
    """A card as the response carries it, with what the audit needs that the card does not say."""

    card: Mapping[str, Any]
    topic: str
    indicator: str
    order_key: str | None


def card_records(
    shown: Sequence[ShownCard],
    *,
    service_id: str,
    hook: str,
    hook_instance: str,
    patient_hash: str,
    now: datetime,
    content_version: str | None = None,
    content_fingerprint: str | None = None,
    user_hash: str | None = None,
    iss: str | None = None,
    tenant: str | None = None,
    silent: bool = False,
) -> list[CardRecord]:
    """The audit rows of one response: one per card, with its suggestions' uuids and labels.

    ``silent``: cards of topics in silent mode, never sent; no suggestion of theirs was offered.
    """
    records = []
    for item in shown:
        suggestions = () if silent else item.card.get("suggestions", ())
        records.append(
            CardRecord(
                card_uuid=item.card["uuid"],
                suggestion_uuids=tuple(s["uuid"] for s in suggestions),
                service_id=service_id,
                hook=hook,
                topic=item.topic,
                indicator=item.indicator,
                hook_instance=hook_instance,
                patient_hash=patient_hash,
                order_key=item.order_key,
                created_at=now,
                suggestion_labels=tuple(s["label"] for s in suggestions),
                content_version=content_version,
                content_fingerprint=content_fingerprint,
                user_hash=user_hash,
                iss=iss,
                tenant=tenant,
                silent=silent,
            )
        )
    return records
