"""Card audit, feedback with accepted suggestions, and seen token ids.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from _schema: a migration must keep meaning what it meant
# when it first ran, whatever the current table definitions say.
_UUID = sa.String(64)
_SHORT = sa.String(64)
_TOPIC = sa.String(128)
_INDICATOR = sa.String(16)
_TIME = sa.DateTime(timezone=False)


def upgrade() -> None:
    op.create_table(
        "card_audit",
        sa.Column("card_uuid", _UUID, nullable=False),
        sa.Column("service_id", _SHORT, nullable=False),
        sa.Column("hook", _SHORT, nullable=False),
        sa.Column("topic", _TOPIC, nullable=False),
        sa.Column("indicator", _INDICATOR, nullable=False),
        sa.Column("hook_instance", sa.Text(), nullable=False),
        sa.Column("patient_hash", _SHORT, nullable=False),
        sa.Column("order_key", _SHORT, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("card_uuid", name="pk_card_audit"),
    )
    op.create_index("ix_card_audit_patient_topic", "card_audit", ["patient_hash", "topic"])
    op.create_index("ix_card_audit_created_at", "card_audit", ["created_at"])

    op.create_table(
        "card_suggestion",
        sa.Column("card_uuid", _UUID, nullable=False),
        sa.Column("suggestion_uuid", _UUID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("card_uuid", "suggestion_uuid", name="pk_card_suggestion"),
    )
    op.create_index("ix_card_suggestion_suggestion_uuid", "card_suggestion", ["suggestion_uuid"])

    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("card_uuid", _UUID, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("override_system", sa.Text(), nullable=True),
        sa.Column("override_code", sa.Text(), nullable=True),
        sa.Column("override_display", sa.Text(), nullable=True),
        sa.Column("user_comment", sa.Text(), nullable=True),
        sa.Column("outcome_timestamp", _TIME, nullable=False),
        sa.Column("received_at", _TIME, nullable=False),
        sa.Column("service_id", _SHORT, nullable=False),
        sa.Column("topic", _TOPIC, nullable=True),
        sa.Column("indicator", _INDICATOR, nullable=True),
        sa.Column("unknown_card", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.UniqueConstraint("card_uuid", "outcome", "outcome_timestamp", name="uq_feedback_item"),
    )
    op.create_index("ix_feedback_received_at", "feedback", ["received_at"])

    op.create_table(
        "feedback_suggestion",
        sa.Column("feedback_id", sa.Integer(), nullable=False),
        sa.Column("suggestion_uuid", _UUID, nullable=False),
        sa.ForeignKeyConstraint(
            ["feedback_id"], ["feedback.id"], name="fk_feedback_suggestion_feedback"
        ),
        sa.PrimaryKeyConstraint("feedback_id", "suggestion_uuid", name="pk_feedback_suggestion"),
    )
    op.create_index(
        "ix_feedback_suggestion_suggestion_uuid", "feedback_suggestion", ["suggestion_uuid"]
    )

    op.create_table(
        "seen_jti",
        sa.Column("iss", sa.Text(), nullable=False),
        sa.Column("jti", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("iss", "jti", name="pk_seen_jti"),
    )
    op.create_index("ix_seen_jti_expires_at", "seen_jti", ["expires_at"])


def downgrade() -> None:
    op.drop_table("seen_jti")
    op.drop_table("feedback_suggestion")
    op.drop_table("feedback")
    op.drop_table("card_suggestion")
    op.drop_table("card_audit")
