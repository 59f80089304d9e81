"""Builders for store tests: cards, feedback items, a clock the test moves."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest

from cds_service.feedback import FeedbackItem, parse_feedback
from cds_service.store import CardRecord

PG_ADMIN_URL = "host=127.0.0.1 port=5432 user=postgres dbname=test"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PATIENT = "a1b2c3d4e5f60718"  # a keyed hash, as the pipeline passes it; never a patient id
SYSTEM = "https://example.org/cds/override-reason"


PG_SKIP_REASON = "PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres, database test)"


@cache
def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=2):
            return True
    except Exception:
        return False


@contextmanager
def fresh_pg_schema() -> Iterator[str]:
    """A schema of its own for one test, dropped afterwards; skips without PostgreSQL."""
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


def pg_schema_url(schema: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"


def new_uuid() -> str:
    return str(uuid.uuid4())


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class CardBuilder:
    """Defaults for one card; ``build`` overrides any field."""

    defaults: dict[str, Any] = field(
        default_factory=lambda: {
            "suggestion_uuids": (),
            "service_id": "mg-patient-view",
            "hook": "patient-view",
            "topic": "hypomagnesemia",
            "indicator": "warning",
            "hook_instance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "patient_hash": PATIENT,
            "order_key": None,
            "created_at": NOW,
        }
    )

    def build(self, **overrides: Any) -> CardRecord:
        values = {"card_uuid": new_uuid(), **self.defaults, **overrides}
        return CardRecord(**values)


def card(**overrides: Any) -> CardRecord:
    return CardBuilder().build(**overrides)


def timestamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def accepted(card_uuid: str, *suggestions: str, at: datetime = NOW) -> dict[str, Any]:
    item: dict[str, Any] = {
        "card": card_uuid,
        "outcome": "accepted",
        "outcomeTimestamp": timestamp(at),
    }
    if suggestions:
        item["acceptedSuggestions"] = [{"id": s} for s in suggestions]
    return item


def overridden(
    card_uuid: str, reason: str | None = None, *, at: datetime = NOW, comment: str | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "card": card_uuid,
        "outcome": "overridden",
        "outcomeTimestamp": timestamp(at),
    }
    override: dict[str, Any] = {}
    if reason is not None:
        override["reason"] = {"system": SYSTEM, "code": reason, "display": reason.title()}
    if comment is not None:
        override["userComment"] = comment
    if override:
        item["overrideReason"] = override
    return item


def items(*entries: dict[str, Any]) -> list[FeedbackItem]:
    return parse_feedback({"feedback": list(entries)})
