"""No third-party access log unless asked for, and then without query strings.

Canary values (a patient id, a FHIR access token) travel through real server processes, in
``cds-service demo`` (where the service fetches from its own demo FHIR endpoint, so the FHIR
URLs with the patient id pass through the very server that would log them) and in
``cds-service serve`` with ``CDS_ACCESS_LOG=true``; the log stream must not contain them.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import requests

from cds_service._logging import REDACTED, access_path, configure_logging
from cds_service.demo import DemoData

from .store_support import free_port
from .support import REPO

CANARY_PATIENT = "pat-CANARY-7f1c"
CANARY_TOKEN = "tok-CANARY-93ab"
HOOK = "/cds-services/mg-patient-view"


# --- in process -------------------------------------------------------------------------------


def test_uvicorns_access_logger_is_silent_by_default_even_though_the_root_has_a_handler() -> None:
    try:
        configure_logging("INFO")
        # uvicorn logs access lines only when this says True (handlers of ancestors included).
        assert not logging.getLogger("uvicorn.access").hasHandlers()
        assert logging.getLogger("uvicorn.error").hasHandlers()
        configure_logging("INFO", access_log=True)
        assert logging.getLogger("uvicorn.access").hasHandlers()
    finally:
        configure_logging("INFO")
    assert not logging.getLogger("uvicorn.access").hasHandlers()


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        ("/cds-services/mg-patient-view", "/cds-services/mg-patient-view"),
        (f"/cds-services?patient={CANARY_PATIENT}", "/cds-services"),
        (f"/demo/fhir/Patient/{CANARY_PATIENT}", f"/demo/fhir/Patient/{REDACTED}"),
        (f"/demo/fhir/Observation?patient={CANARY_PATIENT}", "/demo/fhir/Observation"),
        ("/demo/fhir/metadata", "/demo/fhir/metadata"),
    ],
)
def test_access_lines_show_the_path_without_query_or_demo_resource_ids(
    target: str, shown: str
) -> None:
    assert access_path(target) == shown


def test_an_access_line_is_rewritten_before_it_is_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", access_log=True)
    capsys.readouterr()
    try:
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "GET",
            f"/demo/fhir/Observation?patient={CANARY_PATIENT}",
            "1.1",
            200,
        )
        [line] = [json.loads(text) for text in capsys.readouterr().err.splitlines() if text]
    finally:
        configure_logging("INFO")
    assert line["event"] == '127.0.0.1:5000 - "GET /demo/fhir/Observation HTTP/1.1" 200'
    assert CANARY_PATIENT not in json.dumps(line)


# --- real processes -----------------------------------------------------------------------------


@contextmanager
def _process(tmp_path: Path, args: list[str], env: dict[str, str]) -> Iterator[tuple[str, Path]]:
    """The CLI on a free port, stdout and stderr apart (the demo prints patient ids on stdout,
    by design, for the sandbox URLs; the log stream is stderr)."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    environment |= {"CDS_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", **env}
    stderr = tmp_path / "stderr.log"
    with (tmp_path / "stdout.log").open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "cds_service.cli", *args, "--port", str(port)],
            cwd=REPO,
            env=environment,
            stdout=out,
            stderr=err,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, stderr.read_text(errors="replace")
            with suppress(requests.ConnectionError):
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "did not start"
            time.sleep(0.2)
        yield base, stderr
    finally:
        process.terminate()
        with suppress(subprocess.TimeoutExpired):
            process.wait(15)
        if process.poll() is None:
            process.kill()


def _hook(fhir: str, patient_id: str) -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": fhir,
        "fhirAuthorization": {"access_token": CANARY_TOKEN, "token_type": "Bearer"},
        "context": {"userId": "Practitioner/example", "patientId": patient_id},
    }


def _traffic(base: str) -> str:
    """Hook calls whose data the service fetches from the demo endpoint, and direct reads;
    returns the demo patient id used, so the caller can search the log for it."""
    demo_patient = next(p for p in DemoData.load().patients if p.hook == "patient-view")
    fhir = f"{base}/demo/fhir"
    with_cards = requests.post(base + HOOK, json=_hook(fhir, demo_patient.patient_id), timeout=30)
    assert with_cards.status_code == 200 and with_cards.json()["cards"], with_cards.text
    unknown = requests.post(base + HOOK, json=_hook(fhir, CANARY_PATIENT), timeout=30)
    assert unknown.status_code in (200, 412)
    read = requests.get(f"{fhir}/Patient/{CANARY_PATIENT}?_canary={CANARY_PATIENT}", timeout=10)
    assert read.status_code == 404
    search = requests.get(f"{fhir}/Observation?patient={CANARY_PATIENT}", timeout=10)
    assert search.status_code == 200
    return demo_patient.patient_id


def _lines(stderr: Path) -> list[dict[str, Any]]:
    time.sleep(0.5)  # the last lines are flushed
    text = stderr.read_text(errors="replace")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _no_canaries(stderr: Path, demo_patient: str) -> None:
    text = stderr.read_text(errors="replace")
    for secret in (CANARY_PATIENT, CANARY_TOKEN, demo_patient):
        assert secret not in text, f"{secret} is in the log"


@pytest.mark.slow
def test_demo_mode_logs_no_access_lines_and_no_canaries(tmp_path: Path) -> None:
    with _process(tmp_path, ["demo"], {}) as (base, stderr):
        demo_patient = _traffic(base)
    lines = _lines(stderr)
    assert any(line.get("event") == "hook.evaluated" for line in lines), "the log was captured"
    assert not [line for line in lines if line.get("logger") == "uvicorn.access"]
    _no_canaries(stderr, demo_patient)


@pytest.mark.slow
def test_an_access_log_asked_for_has_paths_without_queries_or_canaries(tmp_path: Path) -> None:
    env = {"CDS_ACCESS_LOG": "true", "CDS_AUTH_MODE": "off", "CDS_DEMO_FHIR": "true"}
    with _process(tmp_path, ["serve", "--host", "127.0.0.1"], env) as (base, stderr):
        demo_patient = _traffic(base)
    access = [line for line in _lines(stderr) if line.get("logger") == "uvicorn.access"]
    events = [line["event"] for line in access]
    assert any(f'"POST {HOOK} HTTP/1.1" 200' in event for event in events), events
    assert any(f'"GET /demo/fhir/Patient/{REDACTED} HTTP/1.1" 404' in e for e in events), events
    assert any('"GET /demo/fhir/Observation HTTP/1.1" 200' in event for event in events), events
    assert not [event for event in events if "?" in event]
    _no_canaries(stderr, demo_patient)
