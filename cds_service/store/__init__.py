"""State that outlives a request: card audit, feedback, seen token ids, and the report.

One code path (SQLAlchemy 2) for SQLite (WAL, the embedded default) and PostgreSQL; the schema
is migrated with Alembic when a store opens.
"""

from __future__ import annotations

from ._records import CardRecord, OverrideRecord, ShownCard, StoredFeedback, card_records
from ._report import UNKNOWN_TOPIC, format_report_text
from ._store import Clock, Store

__all__ = [
    "UNKNOWN_TOPIC",
    "CardRecord",
    "Clock",
    "OverrideRecord",
    "ShownCard",
    "Store",
    "StoredFeedback",
    "card_records",
    "format_report_text",
]
