"""The soak script runs end to end (a few seconds; the three-minute run is a manual step)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .support import REPO


@pytest.mark.slow
def test_a_short_soak_sees_every_kind_of_request_and_no_5xx() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--seconds", "4", "--concurrency", "4"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "5xx: 0" in out
    assert re.search(r"requests: [\d,]+ ", out)
    assert re.search(r"server RSS \(all processes\): start [\d.]+ MiB, end [\d.]+ MiB", out)
    assert "server still running at the end: yes" in out
    # The expected answer of each kind, wherever that kind was drawn.
    expected = {
        "prefetch": "200",
        "fhir-fallback": "200",
        "invalid-json": "400",
        "text-plain": "415",
        "get-hook": "405",
        "unknown-service": "404",
    }
    for kind, status in expected.items():
        line = next(line for line in out.splitlines() if line.strip().startswith(kind + " "))
        seen = dict(part.split(": ") for part in line.split("  ")[-1].split(", ") if ": " in part)
        assert set(seen) <= {status}, line
