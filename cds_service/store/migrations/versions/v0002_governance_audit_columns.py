"""Card audit: content version and fingerprint, keyed user hash, calling client (iss, tenant).

Revision ID: 0002_governance
Revises: 0001
Create Date: 2026-12-03

Nullable columns: rows written before this revision keep working and read as "not recorded".
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_governance"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from _schema (see 0001).
_SHORT = sa.String(64)
_COLUMNS = (
    ("content_version", _SHORT),
    ("content_fingerprint", _SHORT),
    ("user_hash", _SHORT),
    ("iss", sa.Text()),
    ("tenant", sa.Text()),
)


def upgrade() -> None:
    with op.batch_alter_table("card_audit") as batch:
        for name, type_ in _COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("card_audit") as batch:
        for name, _type in reversed(_COLUMNS):
            batch.drop_column(name)
