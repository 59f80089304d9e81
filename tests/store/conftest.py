"""Each store test runs on SQLite (a file under tmp_path) and on PostgreSQL in its own schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from .support import PG_ADMIN_URL, pg_schema_url

PG_SKIP_REASON = "PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres, database test)"


@cache
def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=2):
            return True
    except Exception:
        return False


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema for one test, dropped afterwards, so parallel runs never meet."""
    if not postgres_available():
        pytest.skip(PG_SKIP_REASON)
    import psycopg

    schema = f"cds_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'cds.sqlite3'}"
    schema: str = request.getfixturevalue("pg_schema")
    return pg_schema_url(schema)
