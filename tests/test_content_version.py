"""The content version end to end: discovery, /readyz, /metrics, each card, each audit row and the
export, after a real hook call; and all of them changing with a one-character content change."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from cds_service._logging import patient_hash
from cds_service.app import create_app
from cds_service.cli import main
from cds_service.content import Content
from cds_service.pipeline import CdsService
from cds_service.profile import load_site_content
from cds_service.store import Store
from cds_service.trust import VerifiedCaller

from .settings_support import make_settings
from .support import CARDS, NOW, RefusingFhirClient, hook_request, magnesium

KEY = "site-hash-key"
USER = "Practitioner/example"  # what hook_request sends as context.userId
PATIENT = "pat-1"


def caller(_header: str | None, _audience: str) -> VerifiedCaller:
    return VerifiedCaller(
        iss="https://ehr.example.org", sub=None, jti="j-1", tenant="tenant-a", kid="k", alg="ES384"
    )


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'cds.sqlite3'}"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        yield opened


def client_for(content: Content, store: Store, *, auth: bool = True) -> TestClient:
    service = CdsService(
        settings=make_settings(patient_hash_key=KEY),
        content=content,
        store=store,
        fhir_client=RefusingFhirClient(),
        clock=lambda: NOW,
    )
    return TestClient(create_app(service, authenticator=caller if auth else None))


def one_character_changed(tmp_path: Path) -> Content:
    cards = tmp_path / "cards"
    shutil.copytree(CARDS, cards)
    topic = cards / "topics" / "mg-declining.yaml"
    text = topic.read_text(encoding="utf-8")
    topic.write_text(text.replace("recheck sooner", "recheck Sooner", 1), encoding="utf-8")
    return load_site_content(cards)


def seen_everywhere(client: TestClient, store: Store) -> dict[str, Any]:
    """The content version as discovery, /readyz, /metrics, a card and the audit state it."""
    response = client.post(
        "/cds-services/mg-patient-view", json=hook_request(observations=[magnesium(1.1)])
    )
    (card,) = response.json()["cards"]
    store.flush()
    exported = [row for row in store.export() if row["card"] == card["uuid"]]
    metrics = [
        line
        for line in client.get("/metrics").text.splitlines()
        if line.startswith("cds_content_info{")
    ]
    return {
        "discovery": [
            s["extension"]["cds-service.content"]
            for s in client.get("/cds-services").json()["services"]
        ],
        "readyz": client.get("/readyz").json()["content_version"],
        "metrics": metrics,
        "card": card["extension"]["cds-service.content"],
        "export": exported,
    }


def test_the_version_is_visible_everywhere_after_a_call(store: Store) -> None:
    content = load_site_content(CARDS)
    expected = content.governance.version.as_dict()
    seen = seen_everywhere(client_for(content, store), store)
    assert seen["discovery"] == [expected] * 3
    assert seen["readyz"] == expected
    assert seen["card"] == expected
    assert seen["metrics"] == [
        f'cds_content_info{{fingerprint="{expected["fingerprint"]}",profile="default",'
        f'released="2026-12-03",version="2.0.0"}} 1.0'
    ]
    (row,) = seen["export"]
    assert (row["content_version"], row["content_fingerprint"]) == (
        "2.0.0",
        expected["fingerprint"],
    )
    assert (row["iss"], row["tenant"]) == ("https://ehr.example.org", "tenant-a")
    assert row["user_hash"] == patient_hash(KEY, USER)
    assert row["patient_hash"] == patient_hash(KEY, PATIENT)
    assert row["user_hash"] != row["patient_hash"]


def test_a_one_character_change_shows_a_new_fingerprint_everywhere(
    store: Store, tmp_path: Path
) -> None:
    shipped = seen_everywhere(client_for(load_site_content(CARDS), store), store)
    edited_content = one_character_changed(tmp_path)
    edited = seen_everywhere(client_for(edited_content, store), store)
    old, new = shipped["card"]["fingerprint"], edited["card"]["fingerprint"]
    assert old != new and new == edited_content.governance.version.fingerprint
    assert {d["fingerprint"] for d in edited["discovery"]} == {new}
    assert edited["readyz"]["fingerprint"] == new
    assert f'fingerprint="{new}"' in edited["metrics"][0]
    assert edited["export"][0]["content_fingerprint"] == new
    # The version was not bumped: the per-version report shows both fingerprints under it.
    assert store.by_version()["versions"]["2.0.0"]["fingerprints"] == sorted([old, new])


def test_without_authentication_the_client_columns_stay_empty(store: Store) -> None:
    seen = seen_everywhere(client_for(load_site_content(CARDS), store, auth=False), store)
    (row,) = seen["export"]
    assert row["iss"] is None and row["tenant"] is None
    assert row["user_hash"] == patient_hash(KEY, USER)


def test_report_export_and_by_version_from_the_command_line(
    store: Store,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    seen_everywhere(client_for(load_site_content(CARDS), store), store)
    store.close()
    monkeypatch.setenv("CDS_DATABASE_URL", database_url)

    assert main(["report", "--export", "csv"]) == 0
    text = capsysbinary.readouterr().out.decode()
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["content_version"] == "2.0.0" and row["iss"] == "https://ehr.example.org"
    assert row["outcome"] == "" and row["comment"] == "false"
    # Nothing identifying in clear: not the patient id, not the user id.
    assert PATIENT not in text and USER not in text and "Practitioner" not in text

    assert main(["report", "--export", "json", "--since", "2026-11-01"]) == 0
    cards = orjson.loads(capsysbinary.readouterr().out)["cards"]
    assert [c["card"] for c in cards] == [row["card"]]
    assert main(["report", "--export", "json", "--since", "2026-11-21"]) == 0
    assert orjson.loads(capsysbinary.readouterr().out) == {"cards": []}

    assert main(["report", "--by-version", "--format", "json"]) == 0
    versions = orjson.loads(capsysbinary.readouterr().out)["versions"]
    assert versions["2.0.0"]["shown"] == 1
    assert main(["report", "--by-version"]) == 0
    assert b"2.0.0" in capsysbinary.readouterr().out


def test_export_and_by_version_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--export", "csv", "--by-version"])
    assert "not allowed with" in capsys.readouterr().err
