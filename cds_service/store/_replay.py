"""Seen token ids (``jti``), shared by every worker on one database."""

from __future__ import annotations

from sqlalchemy import Connection, delete, update

from ._engine import Database
from ._schema import seen_jti


def first_use(database: Database, iss: str, jti: str, expires_at: float, now: float) -> bool:
    """Record ``(iss, jti)`` until ``expires_at``; False while an earlier use is still live."""
    with database.write() as connection:
        row = {"iss": iss, "jti": jti, "expires_at": expires_at}
        # RETURNING, not rowcount: drivers need not report a row count for an INSERT.
        statement = (
            database.insert_ignoring(seen_jti, ["iss", "jti"]).values(row).returning(seen_jti.c.jti)
        )
        inserted = connection.execute(statement).scalar_one_or_none() is not None
        return inserted or _reclaim_expired(connection, iss, jti, expires_at, now)


def _reclaim_expired(
    connection: Connection, iss: str, jti: str, expires_at: float, now: float
) -> bool:
    # The row may outlive its token until the next sweep; an expired row is no earlier use.
    # Under concurrent reclaims the row lock lets exactly one UPDATE see the old expiry.
    statement = (
        update(seen_jti)
        .where(seen_jti.c.iss == iss, seen_jti.c.jti == jti, seen_jti.c.expires_at <= now)
        .values(expires_at=expires_at)
    )
    return connection.execute(statement).rowcount == 1


def sweep(database: Database, now: float) -> int:
    with database.write() as connection:
        return connection.execute(delete(seen_jti).where(seen_jti.c.expires_at <= now)).rowcount
