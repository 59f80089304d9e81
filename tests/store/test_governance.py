"""The governance export and the per-version report, on SQLite and PostgreSQL; rows written before
the governance columns existed keep working."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from cds_service.store import EXPORT_FIELDS, NOT_RECORDED, Store, csv_lines, format_by_version_text
from cds_service.store._engine import connect
from cds_service.store._migrate import current_revision, upgrade

from .support import NOW, PATIENT, Clock, accepted, card, items, new_uuid, overridden

SERVICE = "mg-patient-view"
USER = "9f8e7d6c5b4a3921"  # a keyed hash, as the pipeline passes it
V1 = {"content_version": "1.0.0", "content_fingerprint": "1111111111111111"}
V2 = {"content_version": "2.0.0", "content_fingerprint": "2222222222222222"}
CALLER = {"iss": "https://ehr.example.org", "tenant": "tenant-a", "user_hash": USER}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(database_url: str, clock: Clock) -> Iterator[Store]:
    opened = Store.open(database_url, clock=clock)
    try:
        yield opened
    finally:
        opened.close()


def export(store: Store, **kwargs: Any) -> list[dict[str, Any]]:
    return list(store.export(**kwargs))


def test_one_row_per_card_with_everything_a_committee_needs(store: Store) -> None:
    shown = card(**V2, **CALLER, suggestion_uuids=(new_uuid(),))
    quiet = card(**V2, **CALLER, topic="mg-declining", indicator="info", created_at=NOW)
    store.record_cards([shown, quiet])
    store.store_feedback(
        SERVICE, items(overridden(shown.card_uuid, "not-relevant", comment="Patient X, bed 4"))
    )
    rows = export(store)
    assert [tuple(row) for row in rows] == [EXPORT_FIELDS, EXPORT_FIELDS]
    by_card = {row["card"]: row for row in rows}
    assert by_card[shown.card_uuid] == {
        "time": "2026-11-20T12:00:00Z",
        "card": shown.card_uuid,
        "service": "mg-patient-view",
        "hook": "patient-view",
        "topic": "hypomagnesemia",
        "indicator": "warning",
        "content_version": "2.0.0",
        "content_fingerprint": "2222222222222222",
        "outcome": "overridden",
        "override_reason": "not-relevant",
        "comment": True,
        "patient_hash": PATIENT,
        "user_hash": USER,
        "iss": "https://ehr.example.org",
        "tenant": "tenant-a",
    }
    assert by_card[quiet.card_uuid]["outcome"] is None
    assert by_card[quiet.card_uuid]["comment"] is False
    # The comment's text is never exported: only that there was one.
    assert "bed 4" not in repr(rows) and "bed 4" not in "".join(csv_lines(rows))


def test_the_latest_feedback_decides_the_outcome(store: Store) -> None:
    shown = card(**V2)
    store.record_cards([shown])
    store.store_feedback(
        SERVICE,
        items(
            overridden(shown.card_uuid, "will-monitor", at=NOW + timedelta(minutes=5)),
            accepted(shown.card_uuid, at=NOW + timedelta(minutes=1)),
        ),
    )
    (row,) = export(store)
    assert (row["outcome"], row["override_reason"], row["comment"]) == (
        "overridden",
        "will-monitor",
        False,
    )


def test_since_filters_on_when_the_card_was_shown(store: Store) -> None:
    old = card(**V1, created_at=NOW - timedelta(days=10))
    new = card(**V2, created_at=NOW)
    store.record_cards([old, new])
    store.store_feedback(SERVICE, items(accepted(old.card_uuid)))
    assert [r["card"] for r in export(store)] == [old.card_uuid, new.card_uuid]  # oldest first
    assert [r["card"] for r in export(store, since=NOW - timedelta(days=1))] == [new.card_uuid]
    by_version = store.by_version(since=NOW - timedelta(days=1))["versions"]
    assert list(by_version) == ["2.0.0"]


def test_csv_has_a_header_and_neutralises_spreadsheet_formulas(store: Store) -> None:
    shown = card(**V2, iss='=HYPERLINK("http://x")', tenant="+tenant")
    store.record_cards([shown])
    store.store_feedback(SERVICE, items(overridden(shown.card_uuid, "@SUM(A1)")))
    text = "".join(csv_lines(store.export()))
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert tuple(row) == EXPORT_FIELDS
    assert row["iss"] == '\'=HYPERLINK("http://x")'
    assert row["tenant"] == "'+tenant"
    assert row["override_reason"] == "'@SUM(A1)"
    assert row["comment"] == "false" and row["user_hash"] == ""


def test_by_version_compares_acceptance_and_override_rates(store: Store, clock: Clock) -> None:
    first = [card(**V1, created_at=NOW - timedelta(days=30)) for _ in range(4)]
    second = [card(**V2, created_at=NOW) for _ in range(5)]
    second.append(card(**V2, topic="mg-declining", indicator="info", created_at=NOW))
    store.record_cards([*first, *second])
    store.store_feedback(
        SERVICE,
        items(
            overridden(first[0].card_uuid, "not-relevant"),
            overridden(first[1].card_uuid, "not-relevant"),
            overridden(first[2].card_uuid, "will-monitor"),
            accepted(first[3].card_uuid),
            accepted(second[0].card_uuid),
            accepted(second[1].card_uuid),
            # The same card accepted twice counts once.
            accepted(second[1].card_uuid, at=NOW + timedelta(minutes=1)),
            overridden(second[5].card_uuid, "not-relevant"),
        ),
    )
    versions = store.by_version()["versions"]
    assert list(versions) == ["1.0.0", "2.0.0"]  # oldest first
    assert versions["1.0.0"] == {
        "fingerprints": ["1111111111111111"],
        "first_shown": "2026-10-21T12:00:00Z",
        "last_shown": "2026-10-21T12:00:00Z",
        "shown": 4,
        "accepted": 1,
        "overridden": 3,
        "acceptance_rate": 0.25,
        "override_rate": 0.75,
        "topics": {
            "hypomagnesemia": {
                "shown": 4,
                "accepted": 1,
                "overridden": 3,
                "acceptance_rate": 0.25,
                "override_rate": 0.75,
            }
        },
    }
    v2 = versions["2.0.0"]
    assert (v2["shown"], v2["accepted"], v2["overridden"]) == (6, 2, 1)
    assert (v2["acceptance_rate"], v2["override_rate"]) == (0.3333, 0.1667)
    assert v2["topics"]["mg-declining"]["override_rate"] == 1.0
    text = format_by_version_text(store.by_version())
    assert "content version" in text and "1111111111111111" in text
    assert "75.0%" in text and "33.3%" in text


def test_two_fingerprints_under_one_version_are_both_listed(store: Store) -> None:
    """Content edited without bumping its version shows up as a second fingerprint."""
    store.record_cards([card(**V2), card(content_version="2.0.0", content_fingerprint="3" * 16)])
    assert store.by_version()["versions"]["2.0.0"]["fingerprints"] == ["2" * 16, "3" * 16]


def test_an_empty_audit() -> None:
    assert format_by_version_text({"versions": {}}) == "No cards recorded."


def test_rows_written_before_the_governance_columns_keep_working(
    database_url: str, clock: Clock
) -> None:
    database = connect(database_url)
    try:
        upgrade(database, "0001")
        assert current_revision(database) == "0001"
        old_card = new_uuid()
        with database.write() as connection:
            connection.execute(_legacy_insert(old_card))
    finally:
        database.engine.dispose()
    with Store.open(database_url, clock=clock) as store:
        assert current_revision(store._database) != "0001"  # migrated on open
        store.store_feedback(SERVICE, items(accepted(old_card)))
        new = card(**V2, **CALLER)
        store.record_cards([new])
        rows = {row["card"]: row for row in export(store)}
        legacy = rows[old_card]
        assert legacy["outcome"] == "accepted" and legacy["topic"] == "hypomagnesemia"
        for field in ("content_version", "content_fingerprint", "user_hash", "iss", "tenant"):
            assert legacy[field] is None
        assert rows[new.card_uuid]["content_version"] == "2.0.0"
        versions = store.by_version()["versions"]
        assert list(versions) == [NOT_RECORDED, "2.0.0"]
        assert versions[NOT_RECORDED]["accepted"] == 1
        assert versions[NOT_RECORDED]["fingerprints"] == []
        assert store.report()["topics"]["hypomagnesemia"]["shown"] == 2
        assert NOT_RECORDED in format_by_version_text(store.by_version())


def _legacy_insert(card_uuid: str) -> Any:
    """An INSERT with only the columns revision 0001 has, as the service wrote before 0002."""
    from sqlalchemy import column, table

    legacy = table(
        "card_audit",
        *(
            column(name)
            for name in (
                "card_uuid",
                "service_id",
                "hook",
                "topic",
                "indicator",
                "hook_instance",
                "patient_hash",
                "order_key",
                "created_at",
            )
        ),
    )
    return insert(legacy).values(
        card_uuid=card_uuid,
        service_id=SERVICE,
        hook="patient-view",
        topic="hypomagnesemia",
        indicator="critical",
        hook_instance="d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        patient_hash=PATIENT,
        order_key=None,
        created_at=(NOW - timedelta(days=3)).replace(tzinfo=None),
    )
