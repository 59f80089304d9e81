"""Feedback rows: one transaction per POST, idempotent per (card, outcome, outcomeTimestamp)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ..feedback import FeedbackItem
from ._engine import Database
from ._records import StoredFeedback
from ._schema import card_audit, feedback, feedback_suggestion

_IDEMPOTENCY_KEY = ("card_uuid", "outcome", "outcome_timestamp")


@dataclass(frozen=True, slots=True)
class _KnownCard:
    topic: str
    indicator: str


def _known_cards(connection: Connection, card_uuids: set[str]) -> dict[str, _KnownCard]:
    query = select(card_audit.c.card_uuid, card_audit.c.topic, card_audit.c.indicator).where(
        card_audit.c.card_uuid.in_(sorted(card_uuids))
    )
    return {
        row.card_uuid: _KnownCard(row.topic, row.indicator) for row in connection.execute(query)
    }


def _feedback_row(
    service_id: str, item: FeedbackItem, card: _KnownCard | None, received_at: datetime
) -> dict[str, Any]:
    reason = item.override_reason
    coding = reason.reason if reason is not None else None
    return {
        "card_uuid": item.card,
        "outcome": item.outcome,
        "override_system": coding.system if coding else None,
        "override_code": coding.code if coding else None,
        "override_display": coding.display if coding else None,
        "user_comment": reason.user_comment if reason else None,
        "outcome_timestamp": item.outcome_timestamp,
        "received_at": received_at,
        "service_id": service_id,
        "topic": card.topic if card else None,
        "indicator": card.indicator if card else None,
        "unknown_card": card is None,
    }


def _insert_item(
    database: Database, connection: Connection, row: Mapping[str, Any], item: FeedbackItem
) -> bool:
    """True if stored, False if this item was stored before."""
    statement = (
        database.insert_ignoring(feedback, _IDEMPOTENCY_KEY).values(row).returning(feedback.c.id)
    )
    feedback_id = connection.execute(statement).scalar_one_or_none()
    if feedback_id is None:
        return False
    suggestions = [
        {"feedback_id": feedback_id, "suggestion_uuid": suggestion_id}
        for suggestion_id in item.accepted_suggestion_ids
    ]
    if suggestions:
        connection.execute(feedback_suggestion.insert(), suggestions)
    return True


def store_items(
    database: Database, service_id: str, items: Sequence[FeedbackItem], received_at: datetime
) -> tuple[StoredFeedback, list[str]]:
    """Store in one transaction; also returns the outcomes of the newly stored items."""
    stored_outcomes: list[str] = []
    duplicates = unknown = 0
    with database.write() as connection:
        card_uuids = {item.card for item in items}
        known = _known_cards(connection, card_uuids)
        if unseen := card_uuids - known.keys():
            # Another worker may be writing these cards right now: wait for it, look again.
            database.lock_card_links(connection)
            known |= _known_cards(connection, unseen)
        for item in items:
            card = known.get(item.card)
            row = _feedback_row(service_id, item, card, received_at)
            if not _insert_item(database, connection, row, item):
                duplicates += 1
                continue
            stored_outcomes.append(item.outcome)
            unknown += card is None
    return StoredFeedback(len(stored_outcomes), duplicates, unknown), stored_outcomes
