"""Each store test runs on SQLite (a file under tmp_path) and on PostgreSQL in its own schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import fresh_pg_schema, pg_schema_url


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema for one test, dropped afterwards, so parallel runs never meet."""
    with fresh_pg_schema() as schema:
        yield schema


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'cds.sqlite3'}"
    schema: str = request.getfixturevalue("pg_schema")
    return pg_schema_url(schema)
