"""Table definitions used by the queries; the migrations create the same tables.

A test compares these with the migrated database, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.types import TypeDecorator

UUID_LENGTH = 64
SHORT = 64
TOPIC_LENGTH = 128


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, stored as naive UTC everywhere.

    SQLite has no time zone type and silently drops offsets; storing naive UTC on both
    databases keeps comparisons and the one code path identical.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        return value.replace(tzinfo=UTC)


# Every constraint and index is named here and in the migrations alike, so later migrations
# can drop or alter them by name on both databases.
metadata = MetaData()

card_audit = Table(
    "card_audit",
    metadata,
    Column("card_uuid", String(UUID_LENGTH), nullable=False),
    Column("service_id", String(SHORT), nullable=False),
    Column("hook", String(SHORT), nullable=False),
    Column("topic", String(TOPIC_LENGTH), nullable=False),
    Column("indicator", String(16), nullable=False),
    Column("hook_instance", Text, nullable=False),
    Column("patient_hash", String(SHORT), nullable=False),
    Column("order_key", String(SHORT), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    # Governance (revision 0002_governance); null on rows written before it.
    Column("content_version", String(SHORT), nullable=True),
    Column("content_fingerprint", String(SHORT), nullable=True),
    Column("user_hash", String(SHORT), nullable=True),
    Column("iss", Text, nullable=True),
    Column("tenant", Text, nullable=True),
    # A card of a topic in silent mode: evaluated and recorded, never sent (rows from before
    # silent mode existed are false).
    Column("silent", Boolean, nullable=False, server_default=false()),
    PrimaryKeyConstraint("card_uuid", name="pk_card_audit"),
    Index("ix_card_audit_patient_topic", "patient_hash", "topic"),
    Index("ix_card_audit_created_at", "created_at"),
)

card_suggestion = Table(
    "card_suggestion",
    metadata,
    Column("card_uuid", String(UUID_LENGTH), nullable=False),
    Column("suggestion_uuid", String(UUID_LENGTH), nullable=False),
    Column("position", Integer, nullable=False),
    Column("label", Text, nullable=True),
    PrimaryKeyConstraint("card_uuid", "suggestion_uuid", name="pk_card_suggestion"),
    Index("ix_card_suggestion_suggestion_uuid", "suggestion_uuid"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, autoincrement=True, nullable=False),
    Column("card_uuid", String(UUID_LENGTH), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("override_system", Text, nullable=True),
    Column("override_code", Text, nullable=True),
    Column("override_display", Text, nullable=True),
    Column("user_comment", Text, nullable=True),
    Column("outcome_timestamp", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("service_id", String(SHORT), nullable=False),
    Column("topic", String(TOPIC_LENGTH), nullable=True),
    Column("indicator", String(16), nullable=True),
    Column("unknown_card", Boolean, nullable=False),
    PrimaryKeyConstraint("id", name="pk_feedback"),
    # The idempotency key of CDS Hooks feedback: the same item twice is stored once.
    UniqueConstraint("card_uuid", "outcome", "outcome_timestamp", name="uq_feedback_item"),
    Index("ix_feedback_received_at", "received_at"),
)

feedback_suggestion = Table(
    "feedback_suggestion",
    metadata,
    Column(
        "feedback_id",
        Integer,
        ForeignKey("feedback.id", name="fk_feedback_suggestion_feedback"),
        nullable=False,
    ),
    Column("suggestion_uuid", String(UUID_LENGTH), nullable=False),
    PrimaryKeyConstraint("feedback_id", "suggestion_uuid", name="pk_feedback_suggestion"),
    Index("ix_feedback_suggestion_suggestion_uuid", "suggestion_uuid"),
)

seen_jti = Table(
    "seen_jti",
    metadata,
    Column("iss", Text, nullable=False),
    Column("jti", Text, nullable=False),
    # Epoch seconds, exactly as the verifier hands them over.
    Column("expires_at", Double, nullable=False),
    PrimaryKeyConstraint("iss", "jti", name="pk_seen_jti"),
    Index("ix_seen_jti_expires_at", "expires_at"),
)
