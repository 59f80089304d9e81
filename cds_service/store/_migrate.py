"""Alembic, driven from code: the schema is brought to ``head`` whenever a store opens."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from ._engine import Database
from ._schema import metadata

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any constant works; it only has to be the same in every worker that may migrate at once.
_PG_MIGRATION_LOCK = 0x6364735F6D696772  # "cds_migr"


class _QuietAlembic(logging.Filter):
    """Drops the two lines Alembic logs on every check; "Running upgrade …" still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not message.startswith(("Context impl", "Will assume"))


logging.getLogger("alembic.runtime.migration").addFilter(_QuietAlembic())


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Module names must not start with a digit, or mypy cannot check the migrations.
    config.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    return config


def upgrade(database: Database, revision: str = "head") -> None:
    """Migrate under the database's write lock, so workers starting together take turns."""
    with database.write() as connection:
        if database.dialect == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
        command.upgrade(alembic_config(connection), revision)


def current_revision(database: Database) -> str | None:
    with database.read() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def run_env() -> None:
    """The body of ``migrations/env.py``: always on the connection the store hands over."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "run migrations through cds_service.store (Store.open, or "
            "python -m cds_service.store upgrade), not the alembic command"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds tables in later migrations.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
