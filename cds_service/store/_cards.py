"""Card audit rows: the batched write, and the overrides the snooze policy reads back."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, false, select, update

from ._engine import Database
from ._records import CardRecord, OverrideRecord
from ._schema import card_audit, card_suggestion, feedback


def _card_row(record: CardRecord) -> dict[str, Any]:
    return {
        "card_uuid": record.card_uuid.lower(),
        "service_id": record.service_id,
        "hook": record.hook,
        "topic": record.topic,
        "indicator": record.indicator,
        "hook_instance": record.hook_instance,
        "patient_hash": record.patient_hash,
        "order_key": record.order_key,
        "created_at": record.created_at,
        "content_version": record.content_version,
        "content_fingerprint": record.content_fingerprint,
        "user_hash": record.user_hash,
        "iss": record.iss,
        "tenant": record.tenant,
        "silent": record.silent,
    }


def _suggestion_rows(record: CardRecord) -> list[dict[str, Any]]:
    labels = record.suggestion_labels
    return [
        {
            "card_uuid": record.card_uuid.lower(),
            "suggestion_uuid": suggestion_uuid.lower(),
            "position": position,
            "label": labels[position] if position < len(labels) else None,
        }
        for position, suggestion_uuid in enumerate(dict.fromkeys(record.suggestion_uuids))
    ]


def write_cards(database: Database, records: Sequence[CardRecord]) -> None:
    """Insert a batch (a repeat of a card is ignored) and link feedback that came first."""
    cards = [_card_row(record) for record in records]
    suggestions = [row for record in records for row in _suggestion_rows(record)]
    with database.write() as connection:
        database.lock_card_links(connection)
        connection.execute(database.insert_ignoring(card_audit, ["card_uuid"]), cards)
        if suggestions:
            keys = ["card_uuid", "suggestion_uuid"]
            connection.execute(database.insert_ignoring(card_suggestion, keys), suggestions)
        _link_early_feedback(connection, [row["card_uuid"] for row in cards])


def _link_early_feedback(connection: Connection, card_uuids: list[str]) -> None:
    # Feedback can reach another worker before this worker's queue is written; resolve it now.
    audit = select(card_audit).where(card_audit.c.card_uuid == feedback.c.card_uuid)
    connection.execute(
        update(feedback)
        .where(feedback.c.unknown_card.is_(True), feedback.c.card_uuid.in_(card_uuids))
        .values(
            topic=audit.with_only_columns(card_audit.c.topic).scalar_subquery(),
            indicator=audit.with_only_columns(card_audit.c.indicator).scalar_subquery(),
            unknown_card=false(),
        )
    )


def overrides_for(
    database: Database, patient_hash: str, topics: Collection[str], since: datetime
) -> list[OverrideRecord]:
    if not topics:
        return []
    query = (
        select(
            card_audit.c.topic,
            card_audit.c.indicator,
            card_audit.c.service_id,
            card_audit.c.order_key,
            feedback.c.outcome_timestamp,
            feedback.c.received_at,
        )
        .join(feedback, feedback.c.card_uuid == card_audit.c.card_uuid)
        .where(
            card_audit.c.patient_hash == patient_hash,
            card_audit.c.topic.in_(sorted(topics)),
            feedback.c.outcome == "overridden",
            # overridden_at <= received_at, so this cannot drop a row that qualifies.
            feedback.c.received_at >= since,
        )
    )
    with database.read() as connection:
        rows = connection.execute(query).all()
    records = [
        OverrideRecord(
            topic=row.topic,
            indicator=row.indicator,
            service_id=row.service_id,
            order_key=row.order_key,
            # A client clock ahead of ours must not stretch a snooze into the future.
            overridden_at=min(row.outcome_timestamp, row.received_at),
        )
        for row in rows
    ]
    return sorted((r for r in records if r.overridden_at >= since), key=_by_time)


def _by_time(record: OverrideRecord) -> datetime:
    return record.overridden_at
