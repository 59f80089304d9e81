"""Alembic, driven from code: the schema is brought to ``head`` whenever a store opens.

A database already at ``head`` (every restart) is recognised with one query, without importing
Alembic: the head revision is read from the migration files themselves.
"""

from __future__ import annotations

import ast
import logging
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

from ._engine import Database
from ._schema import metadata

if TYPE_CHECKING:
    from alembic.config import Config

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
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Module names must not start with a digit, or mypy cannot check the migrations.
    config.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    return config


def _assigned_revisions(source: str) -> tuple[str | None, tuple[str, ...]]:
    """``revision`` and ``down_revision`` (as a tuple) assigned at a migration's top level."""
    values: dict[str, object] = {}
    for node in ast.parse(source).body:
        target: ast.expr | None = None
        if isinstance(node, ast.AnnAssign):
            target = node.target
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and isinstance(value, ast.expr):
            try:
                values[target.id] = ast.literal_eval(value)
            except ValueError:
                continue
    revision = values.get("revision")
    down = values.get("down_revision")
    if isinstance(down, str):
        downs: tuple[str, ...] = (down,)
    elif isinstance(down, list | tuple):
        downs = tuple(d for d in down if isinstance(d, str))
    else:
        downs = ()
    return (revision if isinstance(revision, str) else None), downs


@cache
def head_revision() -> str | None:
    """The single head of ``migrations/versions`` (None if there are several, or none)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        revision, downs = _assigned_revisions(path.read_text(encoding="utf-8"))
        if revision is not None:
            revisions.add(revision)
            parents.update(downs)
    heads = revisions - parents
    return next(iter(heads)) if len(heads) == 1 else None


def upgrade(database: Database, revision: str = "head") -> bool:
    """Migrate under the database's write lock, so workers starting together take turns.

    False when the database was already at ``revision`` (Alembic is then not even imported).
    """
    target = head_revision() if revision == "head" else revision
    if target is not None and current_revision(database) == target:
        return False
    from alembic import command

    with database.write() as connection:
        if database.dialect == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
        command.upgrade(alembic_config(connection), revision)
    return True


def current_revision(database: Database) -> str | None:
    """The database's revision; None when it has no schema yet."""
    with database.read() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    return str(rows[0][0]) if len(rows) == 1 else None


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
