"""The README's serve command, as a real uvicorn process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from .support import REPO, hook_request, magnesium


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_serve_starts_and_answers_discovery_and_hooks(tmp_path: Path, workers: int) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "CDS_AUTH_MODE": "off",
        "CDS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    env.pop("CDS_TRUST_FILE", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cds_service.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "service did not start"
            assert process.poll() is None, "service exited"
            time.sleep(0.2)
        services = requests.get(f"{base}/cds-services", timeout=5).json()["services"]
        assert [s["id"] for s in services] == [
            "mg-patient-view",
            "mg-order-select",
            "mg-order-sign",
        ]
        response = requests.post(
            f"{base}/cds-services/mg-patient-view",
            json=hook_request(observations=[magnesium(1.0, day=time.strftime("%Y-%m-%d"))]),
            timeout=5,
        )
        assert response.status_code == 200
        (card,) = response.json()["cards"]
        assert card["indicator"] == "critical"
        # The card links to its topic page, which this server serves, as discovery lists it.
        topics = services[0]["extension"]["cds-service.topics"]
        assert (
            card["source"]["url"]
            == topics["hypomagnesemia"]
            == f"{base}/cds-services/topics/hypomagnesemia"
        )
        page = requests.get(card["source"]["url"], timeout=5)
        assert page.status_code == 200 and "<h1>Low serum magnesium</h1>" in page.text
        assert (
            card["extension"]["cds-service.content"]
            == services[0]["extension"]["cds-service.content"]
        )
        assert requests.get(f"{base}/readyz", timeout=5).json()["status"] == "ready"
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=15)
    assert b"authentication is off" in output
