"""Opening the store: a restart skips Alembic, ``create=False`` never makes a database, and a
database that cannot be opened is one line naming it (password hidden) and the setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from cds_service.errors import ConfigurationError
from cds_service.store import Store, describe_url, sqlite_file
from cds_service.store._engine import connect, database_error
from cds_service.store._migrate import alembic_config, current_revision, head_revision, upgrade


def test_the_head_read_from_the_files_is_alembics_head() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_a_database_at_head_is_not_migrated_again(database_url: str) -> None:
    with Store.open(database_url):
        pass
    database = connect(database_url)
    try:
        assert current_revision(database) == head_revision()
        assert upgrade(database) is False
    finally:
        database.engine.dispose()


def test_a_restart_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cds.sqlite3'}"
    Store.open(url).close()
    code = (
        "import sys\n"
        "from cds_service.store import Store\n"
        f"Store.open({url!r}).close()\n"
        "print('alembic' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"


def test_open_without_create_refuses_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "var" / "cds.sqlite3"
    with pytest.raises(ConfigurationError, match=f"no database at {path}"):
        Store.open(f"sqlite:///{path}", create=False)
    assert not path.parent.exists()


def test_open_without_create_refuses_a_database_without_the_schema(database_url: str) -> None:
    # an empty database (schema) that exists but was never the service's
    database = connect(database_url)
    database.engine.dispose()
    if sqlite_file(database_url) is not None:
        sqlite_file(database_url).touch()  # type: ignore[union-attr]
    with pytest.raises(ConfigurationError, match="has no cds-service tables"):
        Store.open(database_url, create=False)


def test_open_without_create_reads_an_existing_database(database_url: str) -> None:
    Store.open(database_url).close()
    with Store.open(database_url, create=False) as store:
        assert store.report() == {"topics": {}, "suggestions": {}}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://cds:pw@db:5432/cds", "postgresql+psycopg://cds:***@db:5432/cds"),
        ("postgresql://cds@db/cds", "postgresql://cds@db/cds"),
        ("sqlite://", "sqlite://"),
        ("not a url", "(not a database URL)"),
    ],
)
def test_describe_url_hides_the_password(url: str, shown: str) -> None:
    assert describe_url(url) == shown


def test_describe_url_makes_a_sqlite_path_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert describe_url("sqlite:///var/x.sqlite3") == f"sqlite:///{tmp_path}/var/x.sqlite3"


def test_a_driver_error_never_repeats_the_password() -> None:
    url = "postgresql+psycopg://cds:hunter2@db/cds"
    error = database_error(url, RuntimeError('password authentication failed: "hunter2"\nmore'))
    assert "hunter2" not in str(error)
    assert str(error).splitlines() == [
        "cannot open the database postgresql+psycopg://cds:***@db/cds: password "
        'authentication failed: "***"',
        "check CDS_DATABASE_URL (and that the database server runs)",
    ]
