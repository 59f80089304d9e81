"""``build_app`` mounts the demo when auth is off (by default), never when auth is on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.bootstrap import build_app
from cds_service.settings import AuthMode, Settings

from ..settings_support import make_settings

SANDBOX = "https://sandbox.cds-hooks.org"


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return make_settings(database_url=f"sqlite:///{tmp_path}/db.sqlite3", **overrides)


def test_mounted_by_default_when_auth_is_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CDS_DEMO_FHIR", raising=False)
    with TestClient(build_app(_settings(tmp_path, auth_mode=AuthMode.OFF))) as client:
        assert client.get("/demo/fhir/metadata").json()["fhirVersion"] == "4.0.1"
        assert client.get("/demo/viewer").status_code == 200
        # The sandbox page (public) calling localhost may ask for Private Network Access.
        preflight = client.options(
            "/cds-services/mg-patient-view",
            headers={
                "Origin": SANDBOX,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
                "Access-Control-Request-Private-Network": "true",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] in ("*", SANDBOX)
        assert preflight.headers["access-control-allow-private-network"] == "true"


def test_can_be_switched_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDS_DEMO_FHIR", "0")
    with TestClient(build_app(_settings(tmp_path, auth_mode=AuthMode.OFF))) as client:
        assert client.get("/demo/fhir/metadata").status_code == 404


def test_never_mounted_when_auth_is_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDS_DEMO_FHIR", "1")
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"clients": [{"preset": "cds-hooks-sandbox"}]}))
    settings = _settings(tmp_path, auth_mode=AuthMode.JWT, trust_file=trust)
    with TestClient(build_app(settings)) as client:
        assert client.get("/demo/fhir/metadata").status_code == 404
        assert client.get("/demo/viewer").status_code == 404
