"""Silent mode: ``mode: silent`` on a topic evaluates its card and records it in the audit as
silent, never returns it to the EHR; ``cds-service report`` counts it beside the shown cards;
going live is a content change only."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from cds_service.content import ContentError
from cds_service.pipeline import CdsService
from cds_service.profile import load_site_content
from cds_service.scenarios import Scenario, load_scenario
from cds_service.store import Store, format_report_text
from cds_service.store._schema import card_audit, card_suggestion

from .settings_support import make_settings
from .support import CARDS, RefusingFhirClient, make_client
from .test_scenarios import SCENARIOS_DIR

PPI_WARNING = SCENARIOS_DIR / "ppi-warning-mg-mmol.json"  # hypomagnesemia (warning)
ICU = SCENARIOS_DIR / "icu-critical-k-and-mg.json"  # hypomagnesemia + refractory K, critical


def _content_dir(
    tmp_path: Path, name: str, *, silent: tuple[str, ...] = (), **settings: str
) -> Path:
    """A copy of the shipped content with the given topics in silent mode."""
    directory = tmp_path / name
    shutil.copytree(CARDS, directory)
    for topic in silent:
        path = directory / "topics" / f"{topic}.yaml"
        path.write_text(path.read_text().rstrip("\n") + "\nmode: silent\n")
    for key, value in settings.items():
        path = directory / "settings.yaml"
        lines = [
            f"{key}: {value}" if line.startswith(f"{key}:") else line
            for line in path.read_text().splitlines()
        ]
        path.write_text("\n".join(lines) + "\n")
    return directory


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'audit.sqlite3'}") as opened:
        yield opened


def _service(content_dir: Path, store: Store | None, scenario: Scenario) -> CdsService:
    return CdsService(
        settings=make_settings(patient_hash_key="k"),
        content=load_site_content(content_dir),
        store=store,
        fhir_client=RefusingFhirClient(),
        clock=lambda: scenario.now,
    )


def _call(service: CdsService, scenario: Scenario) -> list[dict[str, Any]]:
    client = make_client(service)
    response = client.post("/cds-services/mg-patient-view", json=scenario.request)
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


def _topics(cards: list[dict[str, Any]]) -> list[str]:
    return [card["source"]["topic"]["code"] for card in cards]


def _audit(store: Store) -> list[tuple[str, str, bool]]:
    store.flush()
    with store._database.read() as connection:
        rows = connection.execute(
            select(card_audit.c.topic, card_audit.c.indicator, card_audit.c.silent).order_by(
                card_audit.c.topic, card_audit.c.silent
            )
        )
        return [(row.topic, row.indicator, row.silent) for row in rows]


def test_a_silent_topic_is_audited_and_never_returned(tmp_path: Path, store: Store) -> None:
    scenario = load_scenario(PPI_WARNING, shift=False)
    silent = _content_dir(tmp_path, "silent", silent=("hypomagnesemia",))
    assert _call(_service(silent, store, scenario), scenario) == []
    assert _audit(store) == [("hypomagnesemia", "warning", True)]
    with store._database.read() as connection:
        assert connection.execute(select(card_suggestion)).all() == []  # nothing was offered
    report = store.report()
    assert report["topics"]["hypomagnesemia"] == {
        "shown": 0,
        "silent": 1,
        "accepted": 0,
        "overridden": 0,
        "override_reasons": {},
    }
    assert report["suggestions"] == {}


def test_going_live_is_a_content_change_only(tmp_path: Path, store: Store) -> None:
    scenario = load_scenario(PPI_WARNING, shift=False)
    silent = _content_dir(tmp_path, "silent", silent=("hypomagnesemia",))
    live = _content_dir(tmp_path, "live")
    assert _call(_service(silent, store, scenario), scenario) == []
    cards = _call(_service(live, store, scenario), scenario)
    assert _topics(cards) == ["hypomagnesemia"]
    assert _audit(store) == [
        ("hypomagnesemia", "warning", False),
        ("hypomagnesemia", "warning", True),
    ]
    counts = store.report()["topics"]["hypomagnesemia"]
    assert (counts["shown"], counts["silent"]) == (1, 1)
    lines = format_report_text(store.report()).splitlines()
    assert lines[0].split()[:3] == ["topic", "shown", "silent"]
    assert lines[2].split()[:3] == ["hypomagnesemia", "1", "1"]


def test_a_silent_card_takes_no_place_under_the_card_cap(tmp_path: Path, store: Store) -> None:
    scenario = load_scenario(ICU, shift=False)
    capped = _content_dir(tmp_path, "capped", max_cards="1")
    assert _topics(_call(_service(capped, None, scenario), scenario)) == ["hypomagnesemia"]
    silent = _content_dir(tmp_path, "silent", silent=("hypomagnesemia",), max_cards="1")
    cards = _call(_service(silent, store, scenario), scenario)
    assert _topics(cards) == ["mg-refractory-hypokalemia"]
    assert _audit(store) == [
        ("hypomagnesemia", "critical", True),
        ("mg-refractory-hypokalemia", "critical", False),
    ]


def test_the_trace_says_why_a_silent_card_is_not_shown(tmp_path: Path) -> None:
    from cds_service.engine import trace

    scenario = load_scenario(PPI_WARNING, shift=False)
    service = _service(_content_dir(tmp_path, "silent", silent=("hypomagnesemia",)), None, scenario)
    result = service.hook("mg-patient-view", scenario.request)
    assert result.response == {"cards": []}
    assert [(s.topic, s.indicator) for s in result.silent] == [("hypomagnesemia", "warning")]
    assert result.silent[0].card["summary"].startswith("Mg ")
    assert trace(result.evaluation)["withheld"] == [
        {"topic": "hypomagnesemia", "reason": "silent mode"}
    ]


def test_the_mode_is_live_or_silent(tmp_path: Path) -> None:
    directory = _content_dir(tmp_path, "bad")
    path = directory / "topics" / "mg-declining.yaml"
    path.write_text(path.read_text().rstrip("\n") + "\nmode: quiet\n")
    with pytest.raises(ContentError, match=r"mg-declining\.yaml: mode: "):
        load_site_content(directory)
    assert all(t.topic.mode == "live" for t in load_site_content(CARDS).topics.values())


def test_old_audit_rows_read_as_shown_after_the_migration(tmp_path: Path) -> None:
    from cds_service.store._engine import connect
    from cds_service.store._migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    database = connect(url)
    try:
        upgrade(database, "0001")  # the schema before silent mode
        with database.write() as connection:
            connection.execute(
                text(
                    "INSERT INTO card_audit (card_uuid, service_id, hook, topic, indicator, "
                    "hook_instance, patient_hash, order_key, created_at) VALUES ('c1', "
                    "'mg-patient-view', 'patient-view', 'hypomagnesemia', 'warning', 'h', "
                    "'p', NULL, '2026-11-20 12:00:00')"
                )
            )
    finally:
        database.engine.dispose()
    with Store.open(url) as store:
        assert _audit(store) == [("hypomagnesemia", "warning", False)]
        assert store.report()["topics"]["hypomagnesemia"]["shown"] == 1
        assert store.report()["topics"]["hypomagnesemia"]["silent"] == 0
