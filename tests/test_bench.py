"""The benchmark runs end to end (a quick smoke run; no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.patients import patient_view_request

from .support import REPO


def test_benchmark_patients_have_the_requested_size_and_thirty_medications() -> None:
    request = patient_view_request(200)
    assert request["prefetch"]["observations"]["total"] == 200
    assert len(request["prefetch"]["medicationRequests"]["entry"]) == 30
    # Every key is filled in (no kidney-failure Condition), so the service never fetches.
    assert request["prefetch"]["conditions"]["entry"] == []
    codes = {
        e["resource"]["code"]["coding"][0]["code"]
        for e in request["prefetch"]["observations"]["entry"]
    }
    assert {"19123-9", "2601-3", "2823-3", "17861-6", "1751-7", "98979-8", "11253-2"} <= codes


@pytest.mark.slow
def test_quick_benchmark_writes_its_table_and_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "| Observations |" in result.stdout
    report = json.loads(out.read_text())
    assert [row["observations"] for row in report["in_process"]] == [10, 200]
    for row in report["in_process"]:
        assert row["evaluate"]["p50_ms"] > 0 and row["ratio_to_orjson_loads"] > 0
    assert {row["workers"] for row in report["http"]} == {1, 2}
    assert all(row["sequential"]["p50_ms"] > 0 for row in report["http"])
    for row in report["http"]:
        for run in row["concurrency_8"].get("runs", ()):
            # Measured from /proc around each wrk run: a server that served requests used CPU.
            assert run["requests_per_s"] > 0 and run["server_cpu_ms_per_request"] > 0
    cold = report["cold_start"]
    assert cold["first_start_s"] > 0 and len(cold["restarts_s"]) == 1 and cold["median_s"] > 0
    assert cold["median_cpu_s"] > 0
    assert "Cold start" in result.stdout


@pytest.mark.slow
def test_quick_simulate_benchmark_reports_throughput_and_memory(tmp_path: Path) -> None:
    out = tmp_path / "simulate.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.simulate", "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "| patients | hooks | workers |" in result.stdout
    report = json.loads(out.read_text())
    rows = report["runs"]
    assert {(r["workers"], r["hooks"]) for r in rows} == {
        (1, "patient-view"),
        (2, "patient-view"),
        (1, "patient-view,order-select,order-sign"),
        (2, "patient-view,order-select,order-sign"),
    }
    for row in rows:
        assert row["patients"] == 60
        assert row["patients_per_s"] > 0 and row["patients_per_cpu_s"] > 0
        assert row["peak_rss_mib"] > 0


@pytest.mark.slow
def test_quick_fallback_benchmark_reports_what_the_service_adds(tmp_path: Path) -> None:
    out = tmp_path / "fallback.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.fallback", "--quick", "--sizes", "10", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "| Observations | calls | latency p50 / p95 / p99 ms |" in result.stdout
    report = json.loads(out.read_text())
    assert report["fhir_latency_ms"] == 20.0
    [row] = report["sizes"]
    assert row["observations"] == 10 and row["calls"] == 20
    # The first call meets the server's limits; the service remembers them for the rest.
    assert row["first_call"]["refused"] == [
        "MedicationStatement 404",
        "Observation 400 _count=1000 _sort=-date",
        "Observation 400 _count=200 _sort=-date",
    ]
    assert row["calls_with_refused_requests"] == 0
    assert row["fhir_requests_per_call"] == [4]  # Patient, Observations, orders, Conditions
    for figure in ("latency", "slowest_fhir_request", "overhead", "full_prefetch_latency"):
        assert set(row[figure]) == {"p50_ms", "p95_ms", "p99_ms", "max_ms"}
    assert row["slowest_fhir_request"]["p50_ms"] >= 20  # the server's fixed latency
