"""Migrations: run at every open, idempotent, and in step with the table definitions."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from cds_service.store import Store
from cds_service.store._engine import connect
from cds_service.store._migrate import alembic_config, current_revision, upgrade
from cds_service.store._schema import metadata

from .support import card

TABLES = {
    "alembic_version",
    "card_audit",
    "card_suggestion",
    "feedback",
    "feedback_suggestion",
    "seen_jti",
}


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_open_migrates_an_empty_database_to_head(database_url: str) -> None:
    with Store.open(database_url) as store:
        database = store._database
        assert current_revision(database) == head()
        with database.read() as connection:
            assert set(inspect(connection).get_table_names()) >= TABLES


def test_migrated_schema_matches_the_table_definitions(database_url: str) -> None:
    with Store.open(database_url) as store, store._database.read() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
        assert differences == []


def test_migrations_are_idempotent_on_an_existing_database(database_url: str) -> None:
    shown = card()
    with Store.open(database_url) as first:
        first.record_cards([shown])
    database = connect(database_url)
    try:
        upgrade(database)  # already at head: nothing to do, nothing lost
        upgrade(database)
        assert current_revision(database) == head()
    finally:
        database.engine.dispose()
    with Store.open(database_url) as again:
        assert again.report()["topics"]["hypomagnesemia"]["shown"] == 1


def test_there_is_exactly_one_head() -> None:
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1
