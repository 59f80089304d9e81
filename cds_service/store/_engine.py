"""Engines for SQLite and PostgreSQL, and the few places where the two dialects differ."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool
from sqlalchemy.sql.dml import Insert

from ..errors import ConfigurationError

# Long enough to ride out another worker's batch or checkpoint; short enough to fail a request.
SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE_OPTION = "cds_write"
# Any constant works; it only has to be the same in every worker (see lock_card_links).
_PG_CARD_LINK_LOCK = 0x6364735F6C696E6B  # "cds_link"


@dataclass(frozen=True, slots=True)
class Database:
    """An engine plus what the store needs to know about its dialect."""

    engine: Engine
    dialect: str
    # An in-memory SQLite database is one shared connection, so access is serialised.
    lock: threading.Lock | None

    def write(self) -> AbstractContextManager[Connection]:
        return _transaction(self, write=True)

    def read(self) -> AbstractContextManager[Connection]:
        return _transaction(self, write=False)

    def lock_card_links(self, connection: Connection) -> None:
        """Serialise card writes with feedback for cards not yet seen, until the commit.

        Feedback can reach one worker while another is still writing the card. Under
        PostgreSQL's READ COMMITTED each side could miss the other's uncommitted row and the
        feedback would never be linked to its card; with this lock, the later of the two sees
        the other's rows. SQLite needs nothing: BEGIN IMMEDIATE already serialises writers.
        """
        if self.dialect == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_CARD_LINK_LOCK}
            )

    def insert_ignoring(self, table: Table, keys: Sequence[str]) -> Insert:
        """INSERT that skips rows whose ``keys`` already exist (``ON CONFLICT DO NOTHING``)."""
        if self.dialect == "postgresql":
            # Imported for a PostgreSQL URL only: the dialect is large; SQLite needs none of it.
            from sqlalchemy.dialects import postgresql

            return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(keys))
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys))


@contextmanager
def _transaction(database: Database, *, write: bool) -> Iterator[Connection]:
    guard: AbstractContextManager[Any] = database.lock or nullcontext()
    with guard, database.engine.connect() as connection:
        connection = connection.execution_options(**{_WRITE_OPTION: write})
        with connection.begin():
            yield connection


def normalise_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql"}:
        # psycopg 3 is the driver we ship; bare postgresql:// would look for psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in {"sqlite", "postgresql"}:
        raise ValueError(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
        )
    return parsed


def _is_memory(url: URL) -> bool:
    database = url.database or ""
    return database in {"", ":memory:"} or "mode=memory" in database


_URL_FORMS = "use sqlite:///path/to/file.sqlite3 or postgresql+psycopg://user:password@host/db"


def describe_url(url: str) -> str:
    """The database URL as it may be printed: password hidden; a SQLite file as an absolute path."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "(not a database URL)"
    if parsed.get_backend_name() == "sqlite" and not _is_memory(parsed):
        return f"sqlite:///{Path(parsed.database or '').resolve()}"
    return parsed.render_as_string(hide_password=True)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (absolute), or None for PostgreSQL and in-memory databases."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or _is_memory(parsed):
        return None
    return Path(parsed.database or "").resolve()


def database_error(url: str, exc: BaseException) -> ConfigurationError:
    """A driver's failure to open ``url``, as one line naming the database and the setting."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = reason[0] if reason else type(exc).__name__
    password = _password(url)
    if password:
        first = first.replace(password, "***")
    server = "" if sqlite_file(url) is not None else " (and that the database server runs)"
    return ConfigurationError(
        f"cannot open the database {describe_url(url)}: {first}\ncheck CDS_DATABASE_URL{server}"
    )


def _password(url: str) -> str | None:
    try:
        password = make_url(url).password
    except ArgumentError:
        return None
    return str(password) if password else None


def _parse(url: str) -> URL:
    try:
        return normalise_url(url)
    except ArgumentError:
        raise ConfigurationError(f"CDS_DATABASE_URL is not a database URL: {_URL_FORMS}") from None
    except ValueError as exc:
        raise ConfigurationError(f"CDS_DATABASE_URL: {exc}") from None


def _create_engine(url: URL, **options: Any) -> Engine:
    try:
        return create_engine(url, **options)
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"CDS_DATABASE_URL names the driver {url.drivername!r}, whose module "
            f"{exc.name!r} is not installed: {_URL_FORMS} (psycopg 3 ships with the service)"
        ) from None
    except NoSuchModuleError:
        raise ConfigurationError(
            f"CDS_DATABASE_URL names the unknown driver {url.drivername!r}: {_URL_FORMS}"
        ) from None


def connect(url: str) -> Database:
    """An engine for ``url``; a URL that cannot work is a ``ConfigurationError`` saying why."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "postgresql":
        engine = _create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)
        return Database(engine, "postgresql", None)
    if _is_memory(parsed):
        engine = _create_engine(
            parsed, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        _install_sqlite_hooks(engine, memory=True)
        return Database(engine, "sqlite", threading.Lock())
    folder = Path(parsed.database or "").parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the folder {folder.resolve()} for the SQLite database "
            f"({exc.strerror}): check CDS_DATABASE_URL"
        ) from None
    engine = _create_engine(
        parsed,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )
    _install_sqlite_hooks(engine, memory=False)
    return Database(engine, "sqlite", None)


def _ensure_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL (a lasting setting) unless another connection already did.

    The switch needs an exclusive lock and SQLite reports BUSY at once, without the busy
    handler, while another process holds any lock: so retry until the busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _install_sqlite_hooks(engine: Engine, *, memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _entry: ConnectionPoolEntry) -> None:
        # pysqlite's own transaction handling defers BEGIN and cannot take the write lock
        # up front; we emit BEGIN ourselves (SQLAlchemy's documented recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if not memory:
                _ensure_wal(cursor)
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A deferred transaction that reads and then writes can fail with SQLITE_BUSY at once,
        # whatever the busy timeout; IMMEDIATE takes the write lock first and waits for it.
        write = bool(connection.get_execution_options().get(_WRITE_OPTION, True))
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
