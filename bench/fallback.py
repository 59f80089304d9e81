"""What the FHIR fallback adds: ``python -m bench.fallback [--quick] [--calls N] [--out FILE]``.

Patient-view calls with no prefetch, sent one after another to a real ``cds-service serve`` (one
worker), whose fallback fetches from a local FHIR server with Oracle Health's documented limits
(``bench/strict_fhir.py``: no MedicationStatement, ``_count`` at most 200, no ``_sort`` on
Observation) that answers every request in a fixed 20 ms. The FHIR server runs in this process
and logs when it handled each request, on the same clock as the calls, so for each call:

    overhead = call latency - the slowest single FHIR request of that call

is what the service adds: receiving and parsing the call, planning and starting the fetches
(all keys concurrently), reading the pages, the rules, the answer. The first call against the
server includes its refused requests and retries (the ``_count`` and ``_sort`` of the
Observation search, asked again one after the other, and the MedicationStatement 404) and is
reported on its own; the service remembers what it learnt, so later calls make no retries.
"""

from __future__ import annotations

import argparse
import copy
import http.client
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from .patients import patient_view_request
from .run import LOG_LEVEL, REPO, Server, _floor_ms
from .strict_fhir import Logged, StrictFhirServer

TARGET_MS = 5.0


def _percentiles(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "p50_ms": round(pick(0.50), 3),
        "p95_ms": round(pick(0.95), 3),
        "p99_ms": round(pick(0.99), 3),
        "max_ms": round(ordered[-1], 3),
    }


def _request(size: int, fhir_server: str, now: datetime) -> dict[str, Any]:
    request = patient_view_request(size, now=now)
    request["fhirServer"] = fhir_server
    del request["prefetch"]
    return request


def _load(server: StrictFhirServer, size: int, now: datetime) -> None:
    prefetch = patient_view_request(size, now=now)["prefetch"]
    server.add([prefetch["patient"]])
    for key in ("observations", "medicationRequests"):
        server.add(entry["resource"] for entry in prefetch[key]["entry"])


def _call(conn: http.client.HTTPConnection, body: bytes) -> tuple[float, float, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    started = time.perf_counter()
    conn.request("POST", "/cds-services/mg-patient-view", body, headers)
    response = conn.getresponse()
    payload = response.read()
    ended = time.perf_counter()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {payload[:300]!r}")
    return started, ended, orjson.loads(payload)


def _measure(
    conn: http.client.HTTPConnection, fhir: StrictFhirServer, body: bytes
) -> dict[str, Any]:
    """One call: its latency, its FHIR requests and what the service added around them."""
    fhir.clear_log()
    started, ended, answer = _call(conn, body)
    log: list[Logged] = fhir.log
    if not log:
        raise RuntimeError("the call made no FHIR request: is the prefetch really absent?")
    durations = [(entry.ended - entry.started) * 1000 for entry in log]
    latency = (ended - started) * 1000
    return {
        "latency_ms": latency,
        "slowest_fhir_ms": max(durations),
        "overhead_ms": latency - max(durations),
        "before_first_fhir_ms": (min(e.started for e in log) - started) * 1000,
        "after_last_fhir_ms": (ended - max(e.ended for e in log)) * 1000,
        "fhir_requests": len(log),
        "refused": sorted(
            f"{e.resource_type} {e.status}"
            + "".join(f" {n}={e.param(n)}" for n in ("_count", "_sort") if e.param(n))
            for e in log
            if e.status != 200
        ),
        "cards": [card["source"]["topic"]["code"] for card in answer["cards"]],
    }


def measure_size(
    port: int, fhir: StrictFhirServer, size: int, calls: int, now: datetime
) -> dict[str, Any]:
    body = orjson.dumps(_request(size, fhir.base, now))
    full = orjson.dumps(patient_view_request(size, now=now))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    _call(conn, full)  # a served worker: its first call ever is not the fallback's to pay
    first = _measure(conn, fhir, body)
    samples: list[dict[str, Any]] = []
    prefetched: list[float] = []
    for _ in range(calls):
        # The same call with full prefetch, in turn with each fallback call: what the service
        # costs when it fetches nothing, under the same machine conditions.
        started, ended, _ = _call(conn, full)
        prefetched.append((ended - started) * 1000)
        samples.append(_measure(conn, fhir, body))
    conn.close()
    retried = [s for s in samples if s["refused"]]
    return {
        "observations": size,
        # How fast the machine is right now: this VM's speed drifts (see docs/performance.md).
        "orjson_loads_200_p50_ms": _floor_ms(orjson.dumps(patient_view_request(200, now=now))),
        "first_call": {k: round(v, 3) if isinstance(v, float) else v for k, v in first.items()},
        "calls": calls,
        "calls_with_refused_requests": len(retried),
        "fhir_requests_per_call": sorted({s["fhir_requests"] for s in samples}),
        "cards": samples[-1]["cards"],
        "latency": _percentiles([s["latency_ms"] for s in samples]),
        "slowest_fhir_request": _percentiles([s["slowest_fhir_ms"] for s in samples]),
        "overhead": _percentiles([s["overhead_ms"] for s in samples]),
        "full_prefetch_latency": _percentiles(prefetched),
        "before_first_fhir_request": _percentiles([s["before_first_fhir_ms"] for s in samples]),
        "after_last_fhir_request": _percentiles([s["after_last_fhir_ms"] for s in samples]),
    }


def run(sizes: list[int], calls: int, latency_ms: float, work_dir: Path) -> dict[str, Any]:
    now = datetime.now(UTC)
    fhir = StrictFhirServer(latency_s=latency_ms / 1000)
    for size in sizes:
        _load(fhir, size, now)
    rows = []
    with fhir.running():
        for size in sizes:
            # A new service per size: its first call meets the server's limits afresh.
            server = Server(1, f"sqlite:///{work_dir}/fallback-{size}.sqlite3")
            try:
                rows.append(measure_size(server.port, fhir, size, calls, now))
            finally:
                server.stop()
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.platform()}",
        "fhir_latency_ms": latency_ms,
        "target_overhead_ms": TARGET_MS,
        "sizes": rows,
    }


def _table(result: dict[str, Any]) -> str:
    lines = [
        f"Patient-view without prefetch; FHIR server answering in {result['fhir_latency_ms']:g} ms "
        "(Oracle Health's limits); one worker; calls one after another.",
        "",
        "| Observations | calls | latency p50 / p95 / p99 ms | slowest FHIR request p50 ms "
        "| overhead p50 / p95 / p99 ms | same call with prefetch p50 / p99 ms "
        "| FHIR requests per call | first call ms (refused) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["sizes"]:
        lat, over, first = row["latency"], row["overhead"], row["first_call"]
        full = row["full_prefetch_latency"]
        lines.append(
            f"| {row['observations']:,} | {row['calls']} "
            f"| {lat['p50_ms']:.2f} / {lat['p95_ms']:.2f} / {lat['p99_ms']:.2f} "
            f"| {row['slowest_fhir_request']['p50_ms']:.2f} "
            f"| {over['p50_ms']:.2f} / {over['p95_ms']:.2f} / {over['p99_ms']:.2f} "
            f"| {full['p50_ms']:.2f} / {full['p99_ms']:.2f} "
            f"| {', '.join(map(str, row['fhir_requests_per_call']))} "
            f"| {first['latency_ms']:.1f} ({len(first['refused'])}) |"
        )
    lines += ["", "Where the overhead goes (p50 / p99 ms):", ""]
    for row in result["sizes"]:
        before, after = row["before_first_fhir_request"], row["after_last_fhir_request"]
        lines.append(
            f"- {row['observations']:,} Observations: before the first FHIR request "
            f"{before['p50_ms']:.2f} / {before['p99_ms']:.2f}; after the last "
            f"{after['p50_ms']:.2f} / {after['p99_ms']:.2f}; calls with a refused request "
            f"after the first: {row['calls_with_refused_requests']}; first call refused: "
            f"{', '.join(row['first_call']['refused']) or 'none'}"
        )
    speeds = ", ".join(f"{row['orjson_loads_200_p50_ms']:.2f}" for row in result["sizes"])
    lines += [
        "",
        f"Machine: {result['machine']}; log level {LOG_LEVEL}; its speed, as orjson.loads of "
        f"the 200-Observation prefetch body (p50 ms): {speeds}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10,200", help="Observations per patient")
    parser.add_argument("--calls", type=int, default=1000, help="calls per size, after the first")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="the FHIR server's")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (CI)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "fallback.json")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    calls = 20 if args.quick else args.calls
    with tempfile.TemporaryDirectory() as tmp:
        result = run(sizes, calls, args.latency_ms, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(copy.deepcopy(result), option=orjson.OPT_INDENT_2))
    print(_table(result))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
