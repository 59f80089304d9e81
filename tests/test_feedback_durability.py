"""Feedback is stored before the 200: proven by SIGKILL right after it, and by two workers.

The server is the real ``cds-service serve`` (uvicorn) in a child process, on SQLite and on
PostgreSQL; see ``store_support.serve`` for how its processes are always cleaned up.
"""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy.exc import OperationalError

from cds_service.store import Store, _feedback

from .store.support import Clock, timestamp
from .store_support import (
    DATABASES,
    database_url_for,
    feedback_counters,
    feedback_rows,
    feedback_topics,
    harness,
    serve,
)
from .support import hook_request, magnesium, patient

TOPIC = "hypomagnesemia"
FEEDBACK = "/cds-services/mg-patient-view/feedback"
# Server log lines that would mean a write failed, was retried or was dropped.
TROUBLE = (
    "database is locked",
    "OperationalError",
    "store.batch_retry",
    "store.batch_dropped",
    "store.audit_dropped",
    "store.audit_flush_timeout",
    "feedback.unavailable",
    "request.failed",
    "Traceback",
)


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url_for(request.param, tmp_path) as url:
        yield url


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def _show_card(session: requests.Session, base: str, patient_id: str) -> dict[str, Any]:
    observation = magnesium(1.4, day=_today())
    observation["subject"] = {"reference": f"Patient/{patient_id}"}
    request = hook_request(observations=[observation])
    request["context"]["patientId"] = patient_id
    request["prefetch"]["patient"] = patient(patient_id)
    response = session.post(f"{base}/cds-services/mg-patient-view", json=request, timeout=30)
    assert response.status_code == 200, response.text
    [card] = response.json()["cards"]
    assert (card["source"]["topic"]["code"], card["indicator"]) == (TOPIC, "warning")
    return dict(card)


def _item(card: dict[str, Any], number: int) -> dict[str, Any]:
    """Alternately accepted (with a suggestion) and overridden (with one of the card's reasons)."""
    at = timestamp(datetime.now(UTC))
    if number % 2 == 0:
        return {
            "card": card["uuid"],
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
            "outcomeTimestamp": at,
        }
    return {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": card["overrideReasons"][number % 4]},
        "outcomeTimestamp": at,
    }


def _post_feedback(session: requests.Session, base: str, item: dict[str, Any]) -> int:
    response = session.post(f"{base}{FEEDBACK}", json={"feedback": [item]}, timeout=60)
    return response.status_code


def _stored_topics(database_url: str) -> dict[str, Any]:
    with Store.open(database_url) as store:
        topics: dict[str, Any] = store.report()["topics"]
        return topics


def _counts(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's numbers for ``items`` (one per card), less ``shown``."""
    reasons = [i["overrideReason"]["reason"]["code"] for i in items if i["outcome"] == "overridden"]
    return {
        "accepted": sum(i["outcome"] == "accepted" for i in items),
        "overridden": len(reasons),
        "override_reasons": {code: reasons.count(code) for code in sorted(set(reasons))},
    }


def _no_trouble(output: str) -> None:
    assert not [word for word in TROUBLE if word in output], output


# -- SIGKILL right after the 200 ------------------------------------------------------------------


@pytest.mark.slow
def test_acknowledged_feedback_survives_sigkill(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    acknowledged: list[dict[str, Any]] = []

    # Round 1: cards first, then feedback one item at a time; SIGKILL right after the last 200.
    with serve(database_url, log, workers=1) as server, requests.Session() as session:
        cards = [_show_card(session, server.base, f"patient-{n}") for n in range(6)]
        for number, card in enumerate(cards):
            item = _item(card, number)
            assert _post_feedback(session, server.base, item) == 200
            acknowledged.append(item)
        server.kill()
        assert server.process.returncode == -signal.SIGKILL

    assert feedback_rows(database_url) == {item["card"]: 1 for item in acknowledged}
    assert _stored_topics(database_url) == {
        TOPIC: {"shown": 6, "silent": 0, **_counts(acknowledged)}
    }

    # Round 2, on the same database: a retry of a stored item, then a card and its feedback
    # and SIGKILL the moment that 200 arrives. The card was still in the audit queue (group
    # commit): the feedback must have written it first, so the report can name its topic.
    with serve(database_url, log, workers=1) as server, requests.Session() as session:
        assert _post_feedback(session, server.base, acknowledged[0]) == 200
        card = _show_card(session, server.base, "patient-late")
        item = _item(card, 1)
        assert _post_feedback(session, server.base, item) == 200
        server.kill()
    acknowledged.append(item)

    assert feedback_rows(database_url) == {item["card"]: 1 for item in acknowledged}
    assert feedback_topics(database_url) == {item["card"]: TOPIC for item in acknowledged}
    assert _stored_topics(database_url) == {
        TOPIC: {"shown": 7, "silent": 0, **_counts(acknowledged)}
    }
    _no_trouble(log.read_text(errors="replace"))


@pytest.mark.slow
def test_sigkill_after_each_acknowledged_item(database_url: str, tmp_path: Path) -> None:
    """A fresh server per item, killed straight after that item's 200."""
    log = tmp_path / "serve.log"
    acknowledged: list[dict[str, Any]] = []
    for number in range(3):
        with serve(database_url, log, workers=1) as server, requests.Session() as session:
            card = _show_card(session, server.base, f"patient-{number}")
            item = _item(card, number)
            assert _post_feedback(session, server.base, item) == 200
            server.kill()
        acknowledged.append(item)
        assert feedback_rows(database_url) == {i["card"]: 1 for i in acknowledged}
    assert _stored_topics(database_url) == {
        TOPIC: {"shown": 3, "silent": 0, **_counts(acknowledged)}
    }
    _no_trouble(log.read_text(errors="replace"))


# -- two workers, many threads ------------------------------------------------------------------


@pytest.mark.slow
def test_two_workers_take_concurrent_feedback_without_errors(
    database_url: str, tmp_path: Path
) -> None:
    """Cards and feedback from 8 threads; every feedback POST on a new connection, so it often
    reaches the other worker than the card did, while that worker's audit queue still holds it.
    """
    log = tmp_path / "serve.log"
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session  # type: ignore[no-any-return]

    def card_then_feedback(number: int) -> tuple[dict[str, Any], list[int]]:
        card = _show_card(session(), server.base, f"p-{number}")
        item = _item(card, number)
        with requests.Session() as fresh:
            first = _post_feedback(fresh, server.base, item)
        return item, [first, _post_feedback(session(), server.base, item)]  # and a retry

    with serve(database_url, log, workers=2) as server:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(card_then_feedback, range(160)))
        server.stop()

    items = [item for item, _ in results]
    statuses = [status for _, pair in results for status in pair]
    assert statuses == [200] * len(statuses)
    output = log.read_text(errors="replace")
    _no_trouble(output)
    assert not re.search(r'"status": ?5\d\d', output)
    assert feedback_rows(database_url) == {item["card"]: 1 for item in items}
    # Each item is linked to its card, even when its worker had not seen the card yet.
    assert feedback_topics(database_url) == {item["card"]: TOPIC for item in items}
    assert _stored_topics(database_url) == {
        TOPIC: {"shown": len(items), "silent": 0, **_counts(items)}
    }


# -- idempotency through HTTP -------------------------------------------------------------------


def test_the_same_feedback_posted_twice_is_stored_once(database_url: str) -> None:
    clock = Clock()
    with harness(database_url, clock) as h:
        response = h.client.post(
            "/cds-services/mg-patient-view", json=hook_request(observations=[magnesium(1.4)])
        )
        [card] = response.json()["cards"]
        before = feedback_counters(h.client)
        item = _item(card, 1) | {"outcomeTimestamp": timestamp(clock())}
        body = {"feedback": [item]}
        first = h.client.post(FEEDBACK, json=body)
        second = h.client.post(FEEDBACK, json=body)
        assert (first.status_code, first.json()) == (200, {})
        assert (second.status_code, second.json()) == (200, {})

        # The same item spelled differently (upper-case uuid, +00:00 rather than Z), twice in
        # one body: still the same item.
        same = item | {"card": card["uuid"].upper(), "outcomeTimestamp": clock().isoformat()}
        third = h.client.post(FEEDBACK, json={"feedback": [same, same]})
        assert (third.status_code, third.json()) == (200, {})
        after = feedback_counters(h.client)
        topics = h.store.report()["topics"]

    assert feedback_rows(database_url) == {card["uuid"]: 1}
    assert topics[TOPIC]["overridden"] == 1
    assert after.get("overridden", 0.0) - before.get("overridden", 0.0) == 1


# -- a database that fails ----------------------------------------------------------------------


def test_feedback_the_database_could_not_store_is_503_and_can_be_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'cds.sqlite3'}"
    clock = Clock()
    with harness(url, clock) as h:
        [card] = h.post("mg-patient-view", hook_request(observations=[magnesium(1.4)]))
        item = _item(card, 1)

        def outage(*_: Any, **__: Any) -> Any:
            raise OperationalError("INSERT", {}, ConnectionRefusedError("database is down"))

        with monkeypatch.context() as patch:
            patch.setattr(_feedback, "store_items", outage)
            response = h.client.post(FEEDBACK, json={"feedback": [item]})
        assert response.status_code == 503
        assert response.json()["issue"][0]["code"] == "transient"

        # The client retries once the database is back: stored, once.
        h.feedback("mg-patient-view", item)
        h.feedback("mg-patient-view", item)
    assert feedback_rows(url) == {card["uuid"]: 1}
