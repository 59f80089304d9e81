"""Shared helpers for the demo tests: the small scenarios in ``data/`` and a bare app."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.testclient import TestClient

from cds_service.demo import DemoData, mount_demo
from cds_service.scenarios import all_scenarios

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
REPO = HERE.parent.parent
BASE = "http://testserver"
FHIR = f"{BASE}/demo/fhir"
SANDBOX_ORIGIN = "https://sandbox.cds-hooks.org"


def small_data() -> DemoData:
    """The scenarios in ``data/`` as written (not shifted), so dates are fixed."""
    return DemoData.from_scenarios(all_scenarios(DATA, shift=False))


def demo_client(data: DemoData | None = None) -> TestClient:
    """A bare app with a strict service CORS policy (no origins), plus the demo."""
    app = FastAPI()
    app.add_middleware(CORSMiddleware, allow_origins=[], allow_methods=["GET", "POST"])
    mount_demo(app, data if data is not None else small_data())
    return TestClient(app)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def demo_process(tmp_path: Path, port: int) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``python -m cds_service.cli demo`` on ``port``; terminated however the test ends."""
    env = {**os.environ, "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/demo.sqlite3"}
    for name in ("CDS_TRUST_FILE", "CDS_AUTH_MODE", "CDS_CORS_ORIGINS", "CDS_DEMO_FHIR"):
        env.pop(name, None)
    log = (tmp_path / "demo.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "cds_service.cli", "demo", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    "demo exited: " + (tmp_path / "demo.log").read_text(errors="replace")
                )
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("demo did not start within 60 s")
            time.sleep(0.2)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()
