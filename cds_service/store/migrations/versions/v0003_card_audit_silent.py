"""Card audit: a silent flag for cards of topics in silent mode (recorded, never sent).

Revision ID: 0003_silent
Revises: 0002_governance
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_silent"
down_revision: str | Sequence[str] | None = "0002_governance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every row written before silent mode existed was a card sent to the EHR: false.
    with op.batch_alter_table("card_audit") as batch:
        batch.add_column(
            sa.Column("silent", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("card_audit") as batch:
        batch.drop_column("silent")
