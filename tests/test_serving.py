"""``serve``: where it listens, what it logs once at start, and what it never logs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from cds_service import __version__
from cds_service.errors import ConfigurationError
from cds_service.serving import (
    bind,
    default_host,
    effective_configuration,
    is_loopback,
    unknown_variables,
)
from cds_service.settings import AuthMode

from .process_support import clean_environment, free_port
from .settings_support import make_settings


def test_with_auth_off_the_default_host_is_loopback(tmp_path: Path) -> None:
    assert default_host(make_settings()) == "127.0.0.1"
    assert default_host(make_settings(auth_mode=AuthMode.OFF)) == "127.0.0.1"
    trust = tmp_path / "trust.yaml"
    assert default_host(make_settings(trust_file=trust)) == "0.0.0.0"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.1.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("cds.example.org", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_bind_names_a_port_in_use_and_the_fix() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError, match=f"port {port} on 127.0.0.1 is already in use"):
            bind("127.0.0.1", port)


def test_bind_refuses_an_address_of_another_machine() -> None:
    with pytest.raises(ConfigurationError, match=r"--host 192\.0\.2\.1 is not an address"):
        bind("192.0.2.1", free_port())


def test_effective_configuration_has_every_setting_and_no_secret() -> None:
    settings = make_settings(
        database_url="postgresql+psycopg://cds:pa55word@db.internal/cds",
        patient_hash_key="0123456789abcdef-hash-key",
    )
    shown = effective_configuration(settings, host="0.0.0.0", port=8080, workers=2)
    text = json.dumps(shown)
    assert "pa55word" not in text and "0123456789abcdef" not in text
    assert shown["database_url"] == "postgresql+psycopg://cds:***@db.internal/cds"
    assert shown["patient_hash_key_source"] == "set"
    assert shown["version"] == __version__
    assert (shown["host"], shown["port"], shown["workers"]) == ("0.0.0.0", 8080, 2)
    assert shown["url"] == "http://0.0.0.0:8080"
    assert effective_configuration(settings, host="::1", port=80, workers=1)["url"] == (
        "http://[::1]:80"
    )
    assert shown["auth_mode"] == "off" and shown["demo_fhir"] is False
    named = set(type(settings).model_fields) - {"patient_hash_key"}
    assert named <= set(shown)


def test_effective_configuration_says_where_an_embedded_key_comes_from(tmp_path: Path) -> None:
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'cds.sqlite3'}")
    shown = effective_configuration(settings, host="127.0.0.1", port=8080, workers=1)
    assert shown["database_url"] == f"sqlite:///{tmp_path / 'cds.sqlite3'}"
    assert "beside the database" in shown["patient_hash_key_source"]


def test_unknown_cds_variables_are_named() -> None:
    environ = {
        "CDS_AUTHMODE": "jwt",
        "CDS_LOG_LEVEL": "INFO",
        "CDS_FIXTURES_DIR": "/x",
        "HOME": "/",
    }
    assert unknown_variables(environ) == ["CDS_AUTHMODE"]


# -- a real process -----------------------------------------------------------------------------


@contextmanager
def serving(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    """``cds-service serve`` on a free port; yields its base URL, the process and its log."""
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cds_service.cli", "serve", "--port", str(port), *args],
            cwd=tmp_path,
            env=clean_environment(**(env or {})),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if requests.get(f"{base}/healthz", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, "no answer within 60 s"
                time.sleep(0.1)
            yield base, process, log
        finally:
            process.terminate()
            process.wait(15)


def log_events(log: Path) -> list[dict[str, Any]]:
    events = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


@pytest.mark.slow
def test_serve_on_the_defaults_listens_on_loopback_and_logs_its_configuration_once(
    tmp_path: Path,
) -> None:
    with serving(tmp_path) as (base, _process, log):
        assert requests.get(f"{base}/readyz", timeout=5).json()["status"] == "ready"
    events = log_events(log)
    (configuration,) = [e for e in events if e["event"] == "serve.configuration"]
    assert configuration["host"] == "127.0.0.1"
    assert configuration["database_url"] == f"sqlite:///{tmp_path / 'var' / 'cds-service.sqlite3'}"
    assert configuration["auth_mode"] == "off" and configuration["demo_fhir"] is False
    assert configuration["version"] == __version__
    text = log.read_text()
    assert "AUTHENTICATION IS OFF" not in text  # loopback: only the usual auth-off warning
    assert "setup plugin" not in text  # Alembic's set-up lines, at every start before
    (opened,) = [e for e in events if e["event"] == "store.opened"]
    assert opened["migrated"] is True  # a new database; one line says so
    startup = [e for e in events if "startup complete" in e["event"]]
    assert len(startup) == 1


@pytest.mark.slow
def test_serve_on_all_interfaces_with_auth_off_warns_prominently(tmp_path: Path) -> None:
    with serving(tmp_path, "--host", "0.0.0.0") as (base, _process, log):
        assert requests.get(f"{base}/cds-services", timeout=5).ok
    text = log.read_text()
    assert "AUTHENTICATION IS OFF and the service listens on 0.0.0.0" in text
    assert "CDS_TRUST_FILE" in text


@pytest.mark.slow
def test_at_warning_a_restart_logs_nothing_but_warnings(tmp_path: Path) -> None:
    env = {"CDS_LOG_LEVEL": "WARNING", "CDS_PATIENT_HASH_KEY": "k" * 32}
    with serving(tmp_path, env=env):
        pass
    with serving(tmp_path, env=env) as (_base, _process, log):
        pass
    levels = {event["level"] for event in log_events(log)}
    assert levels <= {"warning", "error"}, log.read_text()
