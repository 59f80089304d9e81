"""Alert economy end to end: snooze, order-select → order-sign, and the report, on a real store.

Every test drives the real app (or ``CdsService``) over a real store, on SQLite and PostgreSQL.
One clock is shared by the service and the store, so card times, feedback receipt times and
snooze windows all move together when a test moves it.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from sqlalchemy.exc import OperationalError

from cds_service.content import Content
from cds_service.engine import trace
from cds_service.pipeline import HookResult
from cds_service.profile import load_site_content
from cds_service.scenarios import SCENARIOS_DIR, load_scenario
from cds_service.store import UNKNOWN_TOPIC, Store, format_report_text

from .store.support import Clock, timestamp
from .store_support import (
    DATABASES,
    Server,
    database_url_for,
    feedback_counters,
    feedback_rows,
    feedback_topics,
    harness,
    overridden,
    serve,
)
from .support import (
    CARDS,
    NOW,
    REPO,
    bundle,
    hook_request,
    magnesium,
    medication_request,
    patient,
    shipped_content,
)

TOPIC = "hypomagnesemia"
ANTACID = "antacid-tacrolimus"
# An Mg/Al antacid is an oral Mg-containing product and tacrolimus must be spaced from it, so the
# spacing card comes with every antacid card below (clinical rules 4.10).
SPACING = "mg-supplement-spacing"
SNOOZED = "overridden recently for this patient"
TACROLIMUS = medication_request("198377", "Tacrolimus 1 MG Oral Capsule", req_id="tac")
MAALOX = "Aluminum Hydroxide 200 MG / Magnesium Hydroxide 200 MG Chewable Tablet"
# Mg in mg/dL: critical below 1.2, warning below 1.6, info below the 1.7 CNI target on a CNI.
CRITICAL, WARNING, INFO = 1.0, 1.4, 1.65


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url_for(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="module")
def snooze_cards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped cards/ with hypomagnesemia's warning tier snoozed for 24 h too
    (shipped: only its info tier)."""
    cards = tmp_path_factory.mktemp("snooze") / "cards"
    shutil.copytree(CARDS, cards)
    topic_file = cards / "topics" / f"{TOPIC}.yaml"
    text, count = re.subn(
        r"^snooze_hours: \{info: 24\}",
        "snooze_hours: {info: 24, warning: 24}",
        topic_file.read_text(),
        flags=re.M,
    )
    assert count == 1
    topic_file.write_text(text)
    return cards


@pytest.fixture(scope="module")
def snooze_content(snooze_cards: Path) -> Content:
    content = load_site_content(snooze_cards)
    assert content.topics[TOPIC].topic.snooze_hours == {"info": 24, "warning": 24}
    return content


# -- requests, cards and feedback --------------------------------------------------------------


def _for_patient(request: dict[str, Any], patient_id: str) -> dict[str, Any]:
    request["context"]["patientId"] = patient_id
    request["prefetch"]["patient"] = patient(patient_id)
    for key in ("observations", "medicationRequests"):
        for entry in request["prefetch"][key]["entry"]:
            entry["resource"]["subject"] = {"reference": f"Patient/{patient_id}"}
    for entry in request["context"].get("draftOrders", {}).get("entry", ()):
        entry["resource"]["subject"] = {"reference": f"Patient/{patient_id}"}
    return request


def patient_view(patient_id: str, mg: float, *, on_tacrolimus: bool = False) -> dict[str, Any]:
    medications = [copy.deepcopy(TACROLIMUS)] if on_tacrolimus else []
    request = hook_request(observations=[magnesium(mg)], medications=medications)
    return _for_patient(request, patient_id)


def patient_view_today(patient_id: str, mg: float) -> dict[str, Any]:
    """For the real server, whose clock is the real one: a result from today."""
    request = patient_view(patient_id, mg)
    today = datetime.now(UTC).date().isoformat()
    request["prefetch"]["observations"] = bundle(magnesium(mg, day=today))
    return _for_patient(request, patient_id)


def antacid_select(patient_id: str) -> dict[str, Any]:
    """order-select: a Mg/Al antacid picked for a patient on tacrolimus with a normal Mg."""
    draft = medication_request("237872", MAALOX, req_id="antacid", status="draft")
    request = hook_request(
        "order-select",
        medications=[copy.deepcopy(TACROLIMUS)],
        drafts=[draft],
        observations=[magnesium(2.0)],
    )
    return _for_patient(request, patient_id)


def shown(cards: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(card["source"]["topic"]["code"], card["indicator"]) for card in cards]


def only_card(cards: list[dict[str, Any]], topic: str, indicator: str) -> dict[str, Any]:
    assert shown(cards) == [(topic, indicator)]
    return cards[0]


def antacid_card(cards: list[dict[str, Any]]) -> dict[str, Any]:
    """The antacid warning, shown with the spacing information and nothing else."""
    assert shown(cards) == [(ANTACID, "warning"), (SPACING, "info")]
    return cards[0]


def withheld(result: HookResult) -> list[tuple[str, str]]:
    from_trace = [(w["topic"], w["reason"]) for w in trace(result.evaluation)["withheld"]]
    assert from_trace == list(result.evaluation.withheld)
    return from_trace


# -- 1. shipped snooze defaults: info tiers only -----------------------------------------------


def test_shipped_snooze_defaults_are_24_hours_for_info_tiers_and_never_critical() -> None:
    hours = {
        code: dict(topic.topic.snooze_hours)
        for code, topic in shipped_content().topics.items()
        if topic.topic.snooze_hours
    }
    assert hours == {
        TOPIC: {"info": 24},
        "mg-declining": {"info": 24},
        "mg-monitoring-gap": {"info": 24, "warning": 24},
        "mg-wasting-comedication": {"info": 24, "warning": 24},
    }


def test_an_overridden_info_card_stays_quiet_for_24_hours_by_default(database_url: str) -> None:
    clock = Clock()
    with harness(database_url, clock) as h:
        info = patient_view("pat-1", INFO, on_tacrolimus=True)
        card = only_card(h.post("mg-patient-view", info), TOPIC, "info")
        h.override("mg-patient-view", card, "will-monitor")

        clock.advance(timedelta(hours=23))
        result = h.hook("mg-patient-view", patient_view("pat-1", INFO, on_tacrolimus=True))
        assert result.response == {"cards": []}
        assert withheld(result) == [(TOPIC, SNOOZED)]
        # A higher tier breaks through at once.
        warning = patient_view("pat-1", WARNING, on_tacrolimus=True)
        only_card(h.post("mg-patient-view", warning), TOPIC, "warning")

        clock.now = NOW + timedelta(hours=25)
        again = patient_view("pat-1", INFO, on_tacrolimus=True)
        only_card(h.post("mg-patient-view", again), TOPIC, "info")


def test_the_warning_tier_is_not_snoozed_by_default_an_overridden_card_comes_back(
    database_url: str,
) -> None:
    clock = Clock()
    with harness(database_url, clock) as h:
        first = only_card(
            h.post("mg-patient-view", patient_view("pat-1", WARNING)), TOPIC, "warning"
        )
        h.override("mg-patient-view", first, "not-relevant")
        assert h.store.report()["topics"][TOPIC]["overridden"] == 1

        clock.advance(timedelta(minutes=5))
        result = h.hook("mg-patient-view", patient_view("pat-1", WARNING))
        again = only_card(result.response["cards"], TOPIC, "warning")
        assert again["uuid"] != first["uuid"]
        assert withheld(result) == []
        only_card(h.post("mg-patient-view", patient_view("pat-1", WARNING)), TOPIC, "warning")


# -- 2. snooze on: same or lower withheld, higher breaks through, per patient, expires ---------


def test_snooze_on_withholds_same_and_lower_and_lets_critical_through(
    database_url: str, snooze_content: Content
) -> None:
    clock = Clock()
    with harness(database_url, clock, snooze_content) as h:
        card = only_card(
            h.post("mg-patient-view", patient_view("pat-1", WARNING)), TOPIC, "warning"
        )
        h.override("mg-patient-view", card, "will-monitor")
        clock.advance(timedelta(hours=1))

        # Same indicator: withheld, named in the evaluation and its trace, absent from the response.
        result = h.hook("mg-patient-view", patient_view("pat-1", WARNING))
        assert result.response == {"cards": []}
        assert withheld(result) == [(TOPIC, SNOOZED)]
        assert h.post("mg-patient-view", patient_view("pat-1", WARNING)) == []

        # A lower indicator (info: below the CNI target on tacrolimus) is withheld too.
        lower = patient_view("pat-1", INFO, on_tacrolimus=True)
        result = h.hook("mg-patient-view", lower)
        assert shown(result.response["cards"]) == []
        assert withheld(result) == [(TOPIC, SNOOZED)]
        assert h.post("mg-patient-view", lower) == []

        # The same patient on another hook is the same patient: order-select is quiet as well.
        select = antacid_select("pat-1")
        select["prefetch"]["observations"] = bundle(magnesium(WARNING, obs_id="mg-low"))
        _for_patient(select, "pat-1")
        result = h.hook("mg-order-select", select)
        antacid_card(result.response["cards"])
        assert withheld(result) == [(TOPIC, SNOOZED)]

        # A critical Mg breaks through.
        result = h.hook("mg-patient-view", patient_view("pat-1", CRITICAL))
        only_card(result.response["cards"], TOPIC, "critical")
        assert withheld(result) == []

        # Another patient is not affected.
        only_card(h.post("mg-patient-view", patient_view("pat-2", WARNING)), TOPIC, "warning")

        # Still quiet just before the 24 h are up (counted from the override), back after 25 h.
        clock.now = NOW + timedelta(hours=23, minutes=59)
        assert h.post("mg-patient-view", patient_view("pat-1", WARNING)) == []
        clock.now = NOW + timedelta(hours=25)
        result = h.hook("mg-patient-view", patient_view("pat-1", WARNING))
        only_card(result.response["cards"], TOPIC, "warning")
        assert withheld(result) == []
        assert 'cds_cards_snoozed_total{topic="hypomagnesemia"}' in h.client.get("/metrics").text


def test_snooze_holds_across_services_sharing_the_database(
    database_url: str, snooze_content: Content
) -> None:
    """An override taken by one worker (or before a restart) silences the card in another."""
    clock = Clock()
    with harness(database_url, clock, snooze_content) as first:
        card = only_card(
            first.post("mg-patient-view", patient_view("pat-1", WARNING)), TOPIC, "warning"
        )
        first.override("mg-patient-view", card, "already-addressed")
        with harness(database_url, clock, snooze_content) as second:
            clock.advance(timedelta(minutes=10))
            result = second.hook("mg-patient-view", patient_view("pat-1", WARNING))
            assert result.response == {"cards": []}
            assert withheld(result) == [(TOPIC, SNOOZED)]


def test_a_database_outage_never_costs_a_card(
    database_url: str, snooze_content: Content, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Snooze fails open: when the overrides cannot be read, the card is shown, with a 200."""
    clock = Clock()
    with harness(database_url, clock, snooze_content) as h:
        card = only_card(
            h.post("mg-patient-view", patient_view("pat-1", WARNING)), TOPIC, "warning"
        )
        h.override("mg-patient-view", card, "will-monitor")
        assert h.post("mg-patient-view", patient_view("pat-1", WARNING)) == []

        def outage(*_: Any, **__: Any) -> Any:
            raise OperationalError("SELECT", {}, ConnectionRefusedError("database is down"))

        with monkeypatch.context() as patch:
            patch.setattr(Store, "overrides_for", outage)
            only_card(h.post("mg-patient-view", patient_view("pat-1", WARNING)), TOPIC, "warning")
            antacid_card(h.post("mg-order-sign", _as_sign(_scenario_select()[0])))
        assert h.post("mg-patient-view", patient_view("pat-1", WARNING)) == []


def _real_override(server: Server, patient_id: str) -> str:
    """A card from the real server, overridden by a client on another connection; its uuid."""
    with requests.Session() as session:
        response = session.post(
            f"{server.base}/cds-services/mg-patient-view",
            json=patient_view_today(patient_id, WARNING),
            timeout=30,
        )
        card = only_card(response.json()["cards"], TOPIC, "warning")
    with requests.Session() as session:
        item = overridden(card, "will-monitor", at=datetime.now(UTC))
        response = session.post(
            f"{server.base}/cds-services/mg-patient-view/feedback",
            json={"feedback": [item]},
            timeout=30,
        )
        assert response.status_code == 200, response.text
    return str(card["uuid"])


def _linked(database_url: str, card_uuid: str) -> None:
    """Until the override is tied to its card.

    The card audit is written asynchronously (group commit, ~50 ms): when the feedback reached
    the other worker first, the override counts once that worker has written the card.
    """
    deadline = time.monotonic() + 10
    while feedback_topics(database_url).get(card_uuid) != TOPIC:
        assert time.monotonic() < deadline, "the card audit row was never written"
        time.sleep(0.05)


def _real_cards(server: Server, patient_id: str, calls: int) -> list[tuple[str, str]]:
    """Each call on a new connection, so the calls spread over the workers."""
    seen: list[tuple[str, str]] = []
    for _ in range(calls):
        with requests.Session() as session:
            response = session.post(
                f"{server.base}/cds-services/mg-patient-view",
                json=patient_view_today(patient_id, WARNING),
                timeout=30,
            )
            assert response.status_code == 200, response.text
            seen += shown(response.json()["cards"])
    return seen


@pytest.mark.slow
def test_snooze_holds_across_real_workers(
    database_url: str, snooze_cards: Path, tmp_path: Path
) -> None:
    env = {"CDS_CARDS_DIR": str(snooze_cards)}
    with serve(database_url, tmp_path / "serve.log", workers=2, env=env) as server:
        _linked(database_url, _real_override(server, "pat-1"))
        assert _real_cards(server, "pat-1", 24) == []
        assert _real_cards(server, "pat-2", 2) == [(TOPIC, "warning")] * 2


@pytest.mark.slow
def test_snooze_survives_a_restart_without_a_configured_hash_key_on_sqlite(
    snooze_cards: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'cds.sqlite3'}"
    env = {"CDS_CARDS_DIR": str(snooze_cards), "CDS_PATIENT_HASH_KEY": ""}
    with serve(url, tmp_path / "serve.log", workers=1, env=env) as server:
        _linked(url, _real_override(server, "pat-1"))
        assert _real_cards(server, "pat-1", 1) == []
        server.stop()
    with serve(url, tmp_path / "serve.log", workers=1, env=env) as server:
        assert _real_cards(server, "pat-1", 1) == []


# -- 3. order-select → order-sign -------------------------------------------------------------


def _scenario_select() -> tuple[dict[str, Any], datetime]:
    scenario = load_scenario(SCENARIOS_DIR / "antacid-select-on-tacrolimus.json", shift=False)
    return scenario.request, scenario.now


def _moved_to(request: dict[str, Any], patient_id: str) -> dict[str, Any]:
    """The same request about another patient: context, Patient and every subject."""
    old = request["context"]["patientId"]
    text = orjson.dumps(request).replace(
        f'"Patient/{old}"'.encode(), f'"Patient/{patient_id}"'.encode()
    )
    moved: dict[str, Any] = orjson.loads(text)
    moved["context"]["patientId"] = patient_id
    moved["prefetch"]["patient"]["id"] = patient_id
    return moved


def _as_sign(select: dict[str, Any], *, draft_id: str | None = None) -> dict[str, Any]:
    sign = copy.deepcopy(select)
    sign["hook"] = "order-sign"
    sign["hookInstance"] = str(uuid.uuid4())
    del sign["context"]["selections"]
    if draft_id is not None:
        for entry in sign["context"]["draftOrders"]["entry"]:
            entry["resource"]["id"] = draft_id
    return sign


def test_an_order_select_override_is_not_repeated_at_order_sign_for_the_same_draft(
    database_url: str,
) -> None:
    select, anchor = _scenario_select()
    assert select["context"]["selections"] == ["MedicationRequest/request-123"]
    clock = Clock(anchor)
    window = timedelta(minutes=shipped_content().settings.windows.order_session_minutes)
    assert window == timedelta(minutes=120)
    with harness(database_url, clock) as h:
        card = antacid_card(h.post("mg-order-select", select))
        h.override("mg-order-select", card, "already-addressed")

        # Signing the same draft a few minutes later: settled, not asked again. Only the
        # overridden card is withheld; the spacing card was not overridden and stays.
        clock.advance(timedelta(minutes=5))
        result = h.hook("mg-order-sign", _as_sign(select))
        assert shown(result.response["cards"]) == [(SPACING, "info")]
        assert withheld(result) == [(ANTACID, SNOOZED)]
        assert shown(h.post("mg-order-sign", _as_sign(select))) == [(SPACING, "info")]

        # A different draft is a different order: shown.
        other = h.hook("mg-order-sign", _as_sign(select, draft_id="request-456"))
        antacid_card(other.response["cards"])
        assert withheld(other) == []

        # The same draft id for another patient is another order too.
        stranger = _moved_to(_as_sign(select), "someone-else")
        antacid_card(h.post("mg-order-sign", stranger))

        # Still within the session just before it ends; shown again once it is over.
        clock.now = anchor + window - timedelta(minutes=1)
        assert shown(h.post("mg-order-sign", _as_sign(select))) == [(SPACING, "info")]
        clock.now = anchor + window + timedelta(minutes=1)
        result = h.hook("mg-order-sign", _as_sign(select))
        antacid_card(result.response["cards"])
        assert withheld(result) == []


def test_order_select_itself_repeats_the_card_when_snooze_is_off(database_url: str) -> None:
    """The coordination is order-select → order-sign only; the topic's snooze stays off."""
    select, anchor = _scenario_select()
    clock = Clock(anchor)
    with harness(database_url, clock) as h:
        card = antacid_card(h.post("mg-order-select", select))
        h.override("mg-order-select", card, "not-relevant")
        clock.advance(timedelta(minutes=1))
        again = copy.deepcopy(select)
        again["hookInstance"] = str(uuid.uuid4())
        antacid_card(h.post("mg-order-select", again))


# -- 4. the report ------------------------------------------------------------------------------


def run_report(url: str, *args: str) -> str:
    env = {**os.environ, "CDS_DATABASE_URL": url}
    completed = subprocess.run(
        [sys.executable, "-m", "cds_service.cli", "report", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    return completed.stdout.decode()


def report_json(url: str, *args: str) -> dict[str, Any]:
    report: dict[str, Any] = orjson.loads(run_report(url, "--format", "json", *args))
    return report


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def _expected_suggestions(
    cards: list[dict[str, Any]], accepted_cards: list[dict[str, Any]]
) -> dict[str, Any]:
    shown_labels = Counter(s["label"] for card in cards for s in card.get("suggestions", ()))
    taken = Counter(card["suggestions"][0]["label"] for card in accepted_cards)
    return {
        label: {
            "shown": count,
            "accepted": taken[label],
            "acceptance_rate": round(taken[label] / count, 4),
        }
        for label, count in sorted(shown_labels.items())
    }


@pytest.mark.slow
def test_report_counts_a_known_mix_of_cards_and_feedback(database_url: str) -> None:
    clock = Clock()
    with harness(database_url, clock) as h:
        counters_before = feedback_counters(h.client)

        # Day 0: three hypomagnesemia cards and one antacid card, then their feedback.
        h1 = only_card(h.post("mg-patient-view", patient_view("pat-1", WARNING)), TOPIC, "warning")
        h2 = only_card(
            h.post("mg-patient-view", patient_view("pat-2", CRITICAL)), TOPIC, "critical"
        )
        h3 = only_card(h.post("mg-patient-view", patient_view("pat-3", 1.45)), TOPIC, "warning")
        a1 = antacid_card(h.post("mg-order-select", antacid_select("pat-4")))
        clock.advance(timedelta(minutes=3))
        h.accept("mg-patient-view", h1)
        h2_feedback = h.override("mg-patient-view", h2, "not-relevant")
        h.override("mg-patient-view", h3, "already-addressed")
        h.accept("mg-order-select", a1)
        h.feedback("mg-patient-view", h2_feedback)  # a client retry: stored once
        stranger = {**h2, "uuid": str(uuid.uuid4())}  # a card this service never sent
        h.override("mg-patient-view", stranger, "will-monitor")

        # Day 2: one more of each, both overridden.
        clock.now = NOW + timedelta(days=2)
        h4 = only_card(h.post("mg-patient-view", patient_view("pat-5", WARNING)), TOPIC, "warning")
        a2 = antacid_card(h.post("mg-order-select", antacid_select("pat-6")))
        h.override("mg-patient-view", h4, "not-relevant")
        h.override("mg-order-select", a2, "patient-declined")

        assert h.store.flush(10)
        counters_after = feedback_counters(h.client)
        rows = feedback_rows(database_url)

    full = report_json(database_url)
    assert full["topics"] == {
        UNKNOWN_TOPIC: {
            "shown": 0,
            "silent": 0,
            "accepted": 0,
            "overridden": 1,
            "override_reasons": {"will-monitor": 1},
        },
        ANTACID: {
            "shown": 2,
            "silent": 0,
            "accepted": 1,
            "overridden": 1,
            "override_reasons": {"patient-declined": 1},
        },
        TOPIC: {
            "shown": 4,
            "silent": 0,
            "accepted": 1,
            "overridden": 3,
            "override_reasons": {"already-addressed": 1, "not-relevant": 2},
        },
        SPACING: {
            "shown": 2,
            "silent": 0,
            "accepted": 0,
            "overridden": 0,
            "override_reasons": {},
        },
    }
    assert full["suggestions"] == _expected_suggestions([h1, h2, h3, h4, a1, a2], [h1, a1])
    # The retried item is one row; every card with feedback has exactly one.
    assert rows == {card["uuid"]: 1 for card in (h1, h2, h3, h4, a1, a2, stranger)}

    since = timestamp(NOW + timedelta(days=1))
    recent = report_json(database_url, "--since", since)
    assert recent["topics"] == {
        ANTACID: {
            "shown": 1,
            "silent": 0,
            "accepted": 0,
            "overridden": 1,
            "override_reasons": {"patient-declined": 1},
        },
        TOPIC: {
            "shown": 1,
            "silent": 0,
            "accepted": 0,
            "overridden": 1,
            "override_reasons": {"not-relevant": 1},
        },
        SPACING: {
            "shown": 1,
            "silent": 0,
            "accepted": 0,
            "overridden": 0,
            "override_reasons": {},
        },
    }
    assert report_json(database_url, "--since", timestamp(NOW + timedelta(days=3))) == {
        "topics": {},
        "suggestions": {},
    }

    text = run_report(database_url)
    assert text == format_report_text(full) + "\n"
    lines = text.splitlines()
    assert cells(lines[0]) == [
        "topic",
        "shown",
        "silent",
        "accepted",
        "overridden",
        "accepted %",
        "override reasons",
    ]
    assert set(lines[1]) <= {"-", " "}
    assert [cells(line) for line in lines[2:6]] == [
        [UNKNOWN_TOPIC, "0", "0", "0", "1", "-", "will-monitor=1"],
        [ANTACID, "2", "0", "1", "1", "50.0%", "patient-declined=1"],
        [TOPIC, "4", "0", "1", "3", "25.0%", "already-addressed=1, not-relevant=2"],
        [SPACING, "2", "0", "0", "0", "0.0%"],
    ]
    assert lines[6] == ""
    assert cells(lines[7]) == ["suggestion", "shown", "accepted", "accepted %"]
    recent_text = run_report(database_url, "--since", since, "--format", "text")
    assert [cells(line)[0] for line in recent_text.splitlines()[2:5]] == [ANTACID, TOPIC, SPACING]

    # Only newly stored items count: the retry does not, the unknown card does.
    def moved(outcome: str) -> float:
        return counters_after.get(outcome, 0.0) - counters_before.get(outcome, 0.0)

    assert moved("accepted") == 2
    assert moved("overridden") == 5


@pytest.mark.slow
def test_report_on_an_empty_database_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    Store.open(url).close()  # as the service leaves it before any card (report creates none)
    assert run_report(url).strip() == "No cards or feedback recorded."
    assert report_json(url) == {"topics": {}, "suggestions": {}}
