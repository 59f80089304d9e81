"""Retention: card audit and feedback older than the configured number of days are deleted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from ._engine import Database
from ._schema import card_audit, card_suggestion, feedback, feedback_suggestion


def purge(database: Database, older_than: datetime) -> int:
    """Delete cards created and feedback received before ``older_than``; returns rows deleted."""
    old_feedback = select(feedback.c.id).where(feedback.c.received_at < older_than)
    old_cards = select(card_audit.c.card_uuid).where(card_audit.c.created_at < older_than)
    # Children first: PostgreSQL (and SQLite with foreign_keys on) enforce the references.
    statements = [
        delete(feedback_suggestion).where(feedback_suggestion.c.feedback_id.in_(old_feedback)),
        delete(feedback).where(feedback.c.received_at < older_than),
        delete(card_suggestion).where(card_suggestion.c.card_uuid.in_(old_cards)),
        delete(card_audit).where(card_audit.c.created_at < older_than),
    ]
    with database.write() as connection:
        return sum(connection.execute(statement).rowcount for statement in statements)
