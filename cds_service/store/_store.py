"""The store: card audit, feedback, the replay cache and the report, on SQLite or PostgreSQL."""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from .. import metrics
from .._logging import get_logger
from ..errors import ConfigurationError
from ..feedback import FeedbackItem
from . import _cards, _feedback, _governance, _replay, _report, _retention
from ._engine import Database, connect, database_error, describe_url, sqlite_file
from ._migrate import current_revision, upgrade
from ._records import CardRecord, OverrideRecord, StoredFeedback
from ._writer import BackgroundWriter

Clock = Callable[[], datetime]

_log = get_logger(__name__)
# Feedback (and the report) wait this long for queued cards, so that they can name the topic.
_FLUSH_TIMEOUT_S = 5.0
_CLOSE_TIMEOUT_S = 30.0
_JTI_SWEEP_EVERY = timedelta(minutes=1)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Store:
    """Open with :meth:`Store.open` in each worker process (the writer thread does not fork)."""

    def __init__(self, database: Database, *, retention_days: int | None, clock: Clock) -> None:
        self._database = database
        self._retention = timedelta(days=retention_days) if retention_days else None
        self._clock = clock
        self._closed = False
        self._close_lock = threading.Lock()
        self._jti_swept_at: datetime | None = None
        self._writer: BackgroundWriter[CardRecord] = BackgroundWriter(
            self._write_cards,
            name="cds-store-audit",
            maintenance=self._apply_retention if self._retention else None,
        )
        # Cards still queued when the interpreter exits would be lost without this.
        atexit.register(_close_if_alive, weakref.ref(self))

    @classmethod
    def open(
        cls,
        url: str,
        *,
        retention_days: int | None = None,
        clock: Clock | None = None,
        create: bool = True,
    ) -> Store:
        """Connect, migrate the schema to the latest revision, and apply retention.

        With ``create=False`` (``cds-service report``) a database that does not exist yet, or
        has no schema, is a ``ConfigurationError`` rather than a new empty database.
        """
        if not create:
            _require_existing_file(url)
        database = connect(url)
        try:
            if not create and current_revision(database) is None:
                raise ConfigurationError(
                    f"the database {describe_url(url)} has no cds-service tables: "
                    "check CDS_DATABASE_URL (the service creates them when it first starts)"
                )
            migrated = upgrade(database)
            revision = current_revision(database)
        except DBAPIError as exc:
            database.engine.dispose()
            raise database_error(url, exc) from None
        except BaseException:
            database.engine.dispose()
            raise
        store = cls(database, retention_days=retention_days, clock=clock or _utc_now)
        # The URL is never logged: it may carry a password.
        _log.info("store.opened", dialect=database.dialect, revision=revision, migrated=migrated)
        store._apply_retention()
        return store

    @property
    def dialect(self) -> str:
        return self._database.dialect

    # -- hook responses ---------------------------------------------------------------------

    def record_cards(self, records: Sequence[CardRecord]) -> None:
        """Queue the cards of one response for the audit table; never waits for the database."""
        if records and not self._writer.submit(records):
            _log.warning("store.audit_dropped", cards=len(records), closed=self._closed)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued card is written; False if ``timeout_s`` ran out first."""
        return self._writer.flush(timeout_s)

    def overrides_for(
        self, patient_hash: str, topics: Collection[str], since: datetime
    ) -> list[OverrideRecord]:
        """This patient's overridden cards of ``topics`` since ``since``, oldest first."""
        return _cards.overrides_for(self._database, patient_hash, topics, since)

    # -- feedback ----------------------------------------------------------------------------

    def store_feedback(self, service_id: str, items: Sequence[FeedbackItem]) -> StoredFeedback:
        """Store and commit every item before returning; repeats and unknown cards are fine."""
        if not items:
            return StoredFeedback(0, 0, 0)
        if not self._writer.flush(_FLUSH_TIMEOUT_S):
            _log.warning("store.audit_flush_timeout", service=service_id)
        result, outcomes = _feedback.store_items(self._database, service_id, items, self._clock())
        for outcome in outcomes:
            metrics.FEEDBACK.labels(outcome).inc()
        return result

    def report(self, since: datetime | None = None) -> dict[str, Any]:
        """``{"topics": {code: counts}, "suggestions": {uuid or label: counts}}``."""
        self._writer.flush(_FLUSH_TIMEOUT_S)
        return _report.build_report(self._database, since)

    def export(self, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        """One row per card shown since ``since``, oldest first, with its latest feedback."""
        self._writer.flush(_FLUSH_TIMEOUT_S)
        return _governance.iter_export(self._database, since)

    def by_version(self, since: datetime | None = None) -> dict[str, Any]:
        """Acceptance and override rates per content version (see ``build_by_version``)."""
        self._writer.flush(_FLUSH_TIMEOUT_S)
        return _governance.build_by_version(self._database, since)

    # -- replay protection -------------------------------------------------------------------

    def first_use(self, iss: str, jti: str, expires_at: float) -> bool:
        """Record ``(iss, jti)`` until ``expires_at`` (epoch s); False if already recorded."""
        now = self._clock()
        if self._jti_swept_at is None or now - self._jti_swept_at >= _JTI_SWEEP_EVERY:
            self._jti_swept_at = now
            _replay.sweep(self._database, now.timestamp())
        return _replay.first_use(self._database, iss, jti, expires_at, now.timestamp())

    # -- retention and lifecycle --------------------------------------------------------------

    def purge(self, older_than: datetime) -> int:
        """Delete cards created and feedback received before ``older_than``; rows deleted."""
        self._writer.flush(_FLUSH_TIMEOUT_S)
        deleted = _retention.purge(self._database, older_than)
        _replay.sweep(self._database, self._clock().timestamp())
        return deleted

    def _apply_retention(self) -> None:
        if self._retention is None:
            return
        deleted = _retention.purge(self._database, self._clock() - self._retention)
        if deleted:
            _log.info("store.purged", rows=deleted, retention_days=self._retention.days)

    def health(self) -> str | None:
        """None when the database answers and the audit writer is running; else what is wrong."""
        if self._closed:
            return "the store is closed"
        if not self._writer.alive:
            return "the audit writer has stopped"
        try:
            with self._database.read() as connection:
                connection.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            return f"the database does not answer ({type(exc).__name__})"
        return None

    def ping(self) -> bool:
        """True when the database answers and the audit writer is running."""
        return self.health() is None

    def close(self) -> None:
        """Write what is queued, stop the writer and release connections; safe to repeat."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._writer.close(_CLOSE_TIMEOUT_S)
        self._database.engine.dispose()

    def _write_cards(self, records: list[CardRecord]) -> None:
        _cards.write_cards(self._database, records)

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _require_existing_file(url: str) -> None:
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise ConfigurationError(
            f"no database at {path}: run this where the service runs, "
            "or set CDS_DATABASE_URL to the service's database"
        )


def _close_if_alive(reference: weakref.ref[Store]) -> None:
    store = reference()
    if store is not None:
        store.close()
