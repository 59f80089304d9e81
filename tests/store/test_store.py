"""Store behaviour on SQLite and PostgreSQL alike (the ``database_url`` fixture runs both)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from cds_service.metrics import REGISTRY
from cds_service.store import UNKNOWN_TOPIC, OverrideRecord, Store, StoredFeedback, _cards
from cds_service.store._engine import Database

from .support import (
    NOW,
    PATIENT,
    Clock,
    accepted,
    card,
    items,
    new_uuid,
    overridden,
)

SERVICE = "mg-patient-view"


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


def topic_counts(store: Store, topic: str) -> dict[str, object]:
    counts: dict[str, object] = store.report()["topics"][topic]
    return counts


def feedback_metric(outcome: str) -> float:
    return REGISTRY.get_sample_value("cds_feedback_total", {"outcome": outcome}) or 0.0


# -- durability and idempotency ------------------------------------------------------------


def test_everything_survives_close_and_reopen(database_url: str, clock: Clock) -> None:
    shown = card(suggestion_uuids=(new_uuid(),))
    with Store.open(database_url, clock=clock) as first:
        first.record_cards([shown])
        first.store_feedback(SERVICE, items(overridden(shown.card_uuid, "not-relevant")))
        assert first.first_use("https://ehr.example.org", "jti-1", NOW.timestamp() + 300)
    # close() drained the audit queue: nothing was flushed explicitly.
    with Store.open(database_url, clock=clock) as second:
        assert second.report()["topics"] == {
            "hypomagnesemia": {
                "shown": 1,
                "silent": 0,
                "accepted": 0,
                "overridden": 1,
                "override_reasons": {"not-relevant": 1},
            }
        }
        assert not second.first_use("https://ehr.example.org", "jti-1", NOW.timestamp() + 300)
        assert second.overrides_for(PATIENT, {"hypomagnesemia"}, NOW - timedelta(hours=1))


def test_the_same_item_twice_is_stored_once(store: Store) -> None:
    shown = card()
    item = overridden(shown.card_uuid, "not-relevant")
    store.record_cards([shown])
    assert store.store_feedback(SERVICE, items(item, item)) == StoredFeedback(1, 1, 0)
    assert store.store_feedback(SERVICE, items(item)) == StoredFeedback(0, 1, 0)
    assert topic_counts(store, "hypomagnesemia")["overridden"] == 1


def test_a_different_timestamp_or_outcome_is_a_new_item(store: Store) -> None:
    shown = card()
    store.record_cards([shown])
    result = store.store_feedback(
        SERVICE,
        items(
            accepted(shown.card_uuid),
            accepted(shown.card_uuid, at=NOW + timedelta(seconds=1)),
            overridden(shown.card_uuid),
        ),
    )
    assert result == StoredFeedback(3, 0, 0)
    # Counts are of cards, not of feedback items: one card was accepted (twice).
    assert topic_counts(store, "hypomagnesemia") == {
        "shown": 1,
        "silent": 0,
        "accepted": 1,
        "overridden": 1,
        "override_reasons": {},
    }


def test_feedback_counts_stored_items_in_the_metric(store: Store) -> None:
    before_accepted, before_overridden = feedback_metric("accepted"), feedback_metric("overridden")
    shown = card()
    store.record_cards([shown])
    batch = items(accepted(shown.card_uuid), overridden(shown.card_uuid))
    store.store_feedback(SERVICE, batch)
    store.store_feedback(SERVICE, batch)  # duplicates are not counted again
    assert feedback_metric("accepted") == before_accepted + 1
    assert feedback_metric("overridden") == before_overridden + 1


def test_an_uppercase_card_uuid_matches_its_card(store: Store) -> None:
    shown = card()
    store.record_cards([shown])
    result = store.store_feedback(SERVICE, items(accepted(shown.card_uuid.upper())))
    assert result == StoredFeedback(1, 0, 0)


# -- unknown cards and the background queue ------------------------------------------------


def test_unknown_card_is_stored_and_flagged(store: Store) -> None:
    unknown = new_uuid()
    result = store.store_feedback(SERVICE, items(overridden(unknown, "not-relevant")))
    assert result == StoredFeedback(stored=1, duplicates=0, unknown_cards=1)
    assert store.report()["topics"] == {
        UNKNOWN_TOPIC: {
            "shown": 0,
            "silent": 0,
            "accepted": 0,
            "overridden": 1,
            "override_reasons": {"not-relevant": 1},
        }
    }
    assert store.overrides_for(PATIENT, {"hypomagnesemia"}, NOW - timedelta(days=1)) == []


def test_feedback_that_arrives_before_its_card_is_linked_when_the_card_is_written(
    store: Store,
) -> None:
    """Another worker may still hold the card in its queue: it links once written."""
    shown = card(indicator="critical")
    assert store.store_feedback(SERVICE, items(overridden(shown.card_uuid))).unknown_cards == 1
    store.record_cards([shown])
    assert store.flush(timeout_s=30)
    topics = store.report()["topics"]
    assert UNKNOWN_TOPIC not in topics
    assert topics["hypomagnesemia"]["overridden"] == 1
    [override] = store.overrides_for(PATIENT, {"hypomagnesemia"}, NOW - timedelta(days=1))
    assert override.indicator == "critical"


def test_feedback_for_a_card_still_being_written_waits_for_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The card's batch is held in the writer until feedback asks for a flush."""
    in_flight, release = threading.Event(), threading.Event()
    write_cards = _cards.write_cards

    def held_write(database: Database, records: list[object]) -> None:
        in_flight.set()
        assert release.wait(30), "store_feedback never flushed the audit queue"
        write_cards(database, records)  # type: ignore[arg-type]

    monkeypatch.setattr(_cards, "write_cards", held_write)
    writer = store._writer
    flush = writer.flush

    def releasing_flush(timeout_s: float | None = None) -> bool:
        release.set()
        return flush(timeout_s)

    monkeypatch.setattr(writer, "flush", releasing_flush)
    shown = card()
    store.record_cards([shown])
    assert in_flight.wait(30)
    result = store.store_feedback(SERVICE, items(accepted(shown.card_uuid)))
    assert result == StoredFeedback(stored=1, duplicates=0, unknown_cards=0)
    assert topic_counts(store, "hypomagnesemia")["accepted"] == 1


# -- report --------------------------------------------------------------------------------


def test_report_counts_a_known_mix_exactly(store: Store) -> None:
    iv, level = "Magnesium sulfate 2 g IV", "Serum magnesium level"
    s1, s2, s3, s4, s7 = (new_uuid() for _ in range(5))
    c1 = card(suggestion_uuids=(s1, s2), suggestion_labels=(iv, level))
    c2 = card(suggestion_uuids=(s3, s4), suggestion_labels=(iv, level))
    c3, c4 = card(), card()
    c5, c6 = (card(topic="antacid-tacrolimus", indicator="critical") for _ in range(2))
    c7 = card(topic="antacid-tacrolimus", suggestion_uuids=(s7,))  # no label: keyed by uuid
    store.record_cards([c1, c2, c3])
    store.record_cards([c4, c5, c6, c7])
    store.store_feedback(
        SERVICE,
        items(
            accepted(c1.card_uuid, s1),
            accepted(c1.card_uuid, s2, at=NOW + timedelta(minutes=1)),
            overridden(c2.card_uuid, "not-relevant"),
            overridden(c3.card_uuid, "already-treated"),
            overridden(c3.card_uuid, "already-treated"),  # a repeat
            overridden(c5.card_uuid, "not-relevant"),
            overridden(c6.card_uuid),
            accepted(new_uuid()),  # a card this service never recorded
        ),
    )
    assert store.report() == {
        "topics": {
            UNKNOWN_TOPIC: {
                "shown": 0,
                "silent": 0,
                "accepted": 1,
                "overridden": 0,
                "override_reasons": {},
            },
            "antacid-tacrolimus": {
                "shown": 3,
                "silent": 0,
                "accepted": 0,
                "overridden": 2,
                "override_reasons": {"not-relevant": 1},
            },
            "hypomagnesemia": {
                "shown": 4,
                "silent": 0,
                "accepted": 1,
                "overridden": 2,
                "override_reasons": {"already-treated": 1, "not-relevant": 1},
            },
        },
        "suggestions": {
            iv: {"shown": 2, "accepted": 1, "acceptance_rate": 0.5},
            level: {"shown": 2, "accepted": 1, "acceptance_rate": 0.5},
            s7: {"shown": 1, "accepted": 0, "acceptance_rate": 0.0},
        },
    }


def test_report_since_counts_only_recent_cards_and_feedback(store: Store, clock: Clock) -> None:
    old = card(created_at=NOW - timedelta(days=10))
    store.record_cards([old])
    clock.now = NOW - timedelta(days=10)
    store.store_feedback(SERVICE, items(overridden(old.card_uuid, "not-relevant")))
    clock.now = NOW
    recent = card()
    store.record_cards([recent])
    store.store_feedback(SERVICE, items(accepted(recent.card_uuid)))
    assert store.report(since=NOW - timedelta(days=1))["topics"] == {
        "hypomagnesemia": {
            "shown": 1,
            "silent": 0,
            "accepted": 1,
            "overridden": 0,
            "override_reasons": {},
        }
    }
    assert topic_counts(store, "hypomagnesemia")["shown"] == 2


def test_empty_report(store: Store) -> None:
    assert store.report() == {"topics": {}, "suggestions": {}}


# -- overrides for the snooze policy -------------------------------------------------------


def test_overrides_for_returns_this_patients_overridden_topics(store: Store, clock: Clock) -> None:
    mine = card(service_id="mg-order-select", hook="order-select", order_key="k1")
    accepted_card = card()
    other_topic = card(topic="antacid-tacrolimus")
    other_patient = card(patient_hash="ffffffffffffffff")
    old = card(created_at=NOW - timedelta(days=3))
    store.record_cards([mine, accepted_card, other_topic, other_patient, old])
    clock.now = NOW - timedelta(days=3)
    store.store_feedback(SERVICE, items(overridden(old.card_uuid, at=clock.now)))
    clock.now = NOW
    store.store_feedback(
        SERVICE,
        items(
            overridden(mine.card_uuid, "not-relevant", at=NOW - timedelta(minutes=5)),
            accepted(accepted_card.card_uuid),
            overridden(other_topic.card_uuid),
            overridden(other_patient.card_uuid),
        ),
    )
    found = store.overrides_for(PATIENT, {"hypomagnesemia"}, NOW - timedelta(days=1))
    assert found == [
        OverrideRecord(
            topic="hypomagnesemia",
            indicator="warning",
            service_id="mg-order-select",
            order_key="k1",
            overridden_at=NOW - timedelta(minutes=5),
        )
    ]
    assert len(store.overrides_for(PATIENT, {"hypomagnesemia"}, NOW - timedelta(days=4))) == 2
    both = store.overrides_for(
        PATIENT, ["hypomagnesemia", "antacid-tacrolimus"], NOW - timedelta(days=1)
    )
    assert [o.topic for o in both] == ["hypomagnesemia", "antacid-tacrolimus"]
    assert store.overrides_for(PATIENT, set(), NOW - timedelta(days=4)) == []


def test_a_future_outcome_timestamp_counts_from_when_it_was_received(store: Store) -> None:
    shown = card()
    store.record_cards([shown])
    store.store_feedback(SERVICE, items(overridden(shown.card_uuid, at=NOW + timedelta(days=30))))
    [override] = store.overrides_for(PATIENT, {"hypomagnesemia"}, NOW - timedelta(hours=1))
    assert override.overridden_at == NOW


# -- replay protection ---------------------------------------------------------------------


def test_first_use_is_shared_by_two_stores_on_one_database(database_url: str, clock: Clock) -> None:
    expires = NOW.timestamp() + 360
    with Store.open(database_url, clock=clock) as one, Store.open(database_url, clock=clock) as two:
        assert one.first_use("iss-a", "jti-1", expires)
        assert not two.first_use("iss-a", "jti-1", expires)
        assert not one.first_use("iss-a", "jti-1", expires)
        assert two.first_use("iss-b", "jti-1", expires), "a jti is scoped to its issuer"
        clock.advance(timedelta(seconds=359))
        assert not two.first_use("iss-a", "jti-1", expires)
        clock.advance(timedelta(seconds=1))
        assert two.first_use("iss-a", "jti-1", expires + 360), "an expired use is forgotten"
        assert not one.first_use("iss-a", "jti-1", expires + 360)


def test_concurrent_first_uses_on_two_stores_admit_exactly_one(
    database_url: str, clock: Clock
) -> None:
    with Store.open(database_url, clock=clock) as one, Store.open(database_url, clock=clock) as two:
        start = threading.Barrier(8)
        results: list[bool] = []
        lock = threading.Lock()

        def attempt(store: Store) -> None:
            start.wait()
            outcome = store.first_use("iss", "same-jti", NOW.timestamp() + 300)
            with lock:
                results.append(outcome)

        threads = [threading.Thread(target=attempt, args=(s,)) for s in [one, two] * 4]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [False] * 7 + [True]


def test_expired_token_ids_are_swept(store: Store, clock: Clock) -> None:
    from sqlalchemy import func, select

    from cds_service.store._schema import seen_jti

    for number in range(5):
        assert store.first_use("iss", f"jti-{number}", NOW.timestamp() + 10)
    clock.advance(timedelta(minutes=2))
    assert store.first_use("iss", "fresh", clock.now.timestamp() + 10)
    with store._database.read() as connection:
        assert connection.execute(select(func.count()).select_from(seen_jti)).scalar_one() == 1


# -- retention -----------------------------------------------------------------------------


def _populate_old_and_new(store: Store, clock: Clock) -> None:
    old = card(created_at=NOW - timedelta(days=40), suggestion_uuids=(new_uuid(),))
    new = card(created_at=NOW - timedelta(days=1))
    store.record_cards([old, new])
    clock.now = NOW - timedelta(days=40)
    store.store_feedback(SERVICE, items(accepted(old.card_uuid, *old.suggestion_uuids)))
    clock.now = NOW - timedelta(days=1)
    store.store_feedback(SERVICE, items(overridden(new.card_uuid, "not-relevant")))
    clock.now = NOW


def test_purge_deletes_cards_and_feedback_older_than_the_cutoff(store: Store, clock: Clock) -> None:
    _populate_old_and_new(store, clock)
    # card + suggestion + feedback + accepted suggestion
    assert store.purge(NOW - timedelta(days=30)) == 4
    assert store.report() == {
        "topics": {
            "hypomagnesemia": {
                "shown": 1,
                "silent": 0,
                "accepted": 0,
                "overridden": 1,
                "override_reasons": {"not-relevant": 1},
            }
        },
        "suggestions": {},
    }
    assert store.purge(NOW - timedelta(days=30)) == 0


def test_retention_days_are_applied_at_open(database_url: str, clock: Clock) -> None:
    with Store.open(database_url, clock=clock) as first:
        _populate_old_and_new(first, clock)
    with Store.open(database_url, retention_days=30, clock=clock) as second:
        topics = second.report()["topics"]
        assert topics["hypomagnesemia"]["shown"] == 1
        assert topics["hypomagnesemia"]["accepted"] == 0


# -- lifecycle -----------------------------------------------------------------------------


def test_ping_and_close(database_url: str) -> None:
    store = Store.open(database_url)
    assert store.ping()
    store.close()
    store.close()  # a second close is harmless
    assert not store.ping()
    store.record_cards([card()])  # dropped with a warning, never an exception
