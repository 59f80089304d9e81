"""Run the benchmark: ``python -m bench.run [--quick] [--sizes 10,200,1000,10000] [--out FILE]``.

Measures, for patient-view requests of several sizes:
(a) in-process evaluation (decode body → hook → encode response) p50/p99,
(e) the floor: ``orjson.loads`` of the same body, and the ratio to it,
(b) HTTP p50/p99 against a real ``cds-service serve``: sequential, and at concurrency 8 (wrk),
    with 1 and 2 workers, (c) throughput, (d) peak memory (VmHWM of the server processes),
(f) cold start: spawning ``cds-service serve`` to its first discovery answer (``bench.coldstart``).
"""

from __future__ import annotations

import argparse
import gc
import http.client
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from .coldstart import cold_start, format_cold_start
from .patients import patient_view_request

REPO = Path(__file__).resolve().parent.parent
# Per-request info lines are production behaviour, but printing them to a terminal would measure
# the terminal; the benchmark logs warnings only, in-process and in the server.
LOG_LEVEL = "WARNING"
WRK_SCRIPT = Path(__file__).resolve().parent / "post.lua"


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6  # noqa: E731
    return {
        "p50_ms": round(pick(0.50), 4),
        "p99_ms": round(pick(0.99), 4),
        "mean_ms": round(statistics.fmean(ordered) / 1e6, 4),
    }


def _time(fn: Callable[[], object], iterations: int) -> list[int]:
    return _time_alternating([fn], iterations)[0]


def _time_alternating(fns: list[Callable[[], object]], iterations: int) -> list[list[int]]:
    """Samples of each function, called in turn, so a ratio between them is taken under the same
    machine conditions (a shared VM's speed drifts by tens of percent over minutes)."""
    for _ in range(min(20, iterations)):
        for fn in fns:
            fn()
    samples: list[list[int]] = [[] for _ in fns]
    for _ in range(iterations):
        for fn, taken in zip(fns, samples, strict=True):
            start = time.perf_counter_ns()
            fn()
            taken.append(time.perf_counter_ns() - start)
    return samples


def in_process(size: int, iterations: int, database_url: str, now: datetime) -> dict[str, Any]:
    from cds_service._logging import configure_logging
    from cds_service.app import settle_heap
    from cds_service.blocking import WouldBlock
    from cds_service.gathering import RequestsFhirClient
    from cds_service.pipeline import CdsService
    from cds_service.profile import load_site_content
    from cds_service.protocol import decode_hook_body
    from cds_service.settings import Settings
    from cds_service.store import Store

    configure_logging(LOG_LEVEL)
    settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    store = Store.open(database_url)
    service = CdsService(
        settings=settings,
        content=load_site_content(settings.cards_dir),
        store=store,
        fhir_client=RequestsFhirClient(),
        clock=lambda: now,
    )
    body = orjson.dumps(patient_view_request(size, now=now))

    def evaluate() -> bytes:
        # What the HTTP route does with a body: decode once, evaluate inline, encode.
        payload = decode_hook_body(body)
        try:
            result = service.hook("mg-patient-view", payload, inline=True)
        except WouldBlock:  # a card to show: its snooze check reads the database
            result = service.hook("mg-patient-view", payload)
        return orjson.dumps(result.response)

    cards = orjson.loads(evaluate())["cards"]
    settle_heap()
    collections_before = [generation["collections"] for generation in gc.get_stats()]
    evaluated, loaded = _time_alternating([evaluate, lambda: orjson.loads(body)], iterations)
    collections = [
        round((generation["collections"] - before) / iterations, 3)
        for generation, before in zip(gc.get_stats(), collections_before, strict=True)
    ]
    evaluation, floor = _percentiles(evaluated), _percentiles(loaded)
    store.close()
    return {
        "observations": size,
        "body_bytes": len(body),
        "cards": [c["source"]["topic"]["code"] for c in cards],
        "evaluate": evaluation,
        "orjson_loads": floor,
        "ratio_to_orjson_loads": round(evaluation["p50_ms"] / floor["p50_ms"], 2),
        "us_per_observation": round(evaluation["p50_ms"] * 1000 / size, 3),
        # Per evaluation and its orjson.loads twin, by generation: the GC's share of the work.
        "gc_collections_per_iteration": collections,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _process_tree(pid: int) -> list[int]:
    pids = [pid]
    for child in subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True
    ).stdout.split():
        pids += _process_tree(int(child))
    return pids


def _vm_hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Server:
    """A real ``cds-service serve`` process on a free loopback port."""

    def __init__(self, workers: int, database_url: str) -> None:
        self.port = _free_port()
        env = {
            **os.environ,
            "CDS_DATABASE_URL": database_url,
            "CDS_LOG_LEVEL": LOG_LEVEL,
            "CDS_AUTH_MODE": "off",
            "CDS_DEMO_FHIR": "0",
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cds_service.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not start")

    def pids(self) -> list[int]:
        return _process_tree(self.process.pid)

    def peak_memory_mb(self) -> float:
        return round(max(_vm_hwm_mb(pid) for pid in _process_tree(self.process.pid)), 1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def sequential(port: int, body: bytes, requests: int) -> dict[str, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}

    def call() -> None:
        conn.request("POST", "/cds-services/mg-patient-view", body, headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")

    return _percentiles(_time(call, requests))


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (threads included)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def concurrent(
    port: int, body_file: Path, seconds: int, connections: int, server_pids: list[int]
) -> dict[str, Any]:
    """wrk with a fixed connection count; falls back to nothing when wrk is missing.

    Also reports the CPU time the server and wrk spent per request: with every core busy,
    throughput is the cores divided by their sum.
    """
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed (apt-get install wrk)"}
    server_cpu, wrk_cpu = _cpu_seconds(server_pids), _children_cpu_seconds()
    result = subprocess.run(
        [
            "wrk",
            "-t1",  # one load thread: the load generator shares the two cores
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            str(WRK_SCRIPT),
            "--latency",
            f"http://127.0.0.1:{port}/cds-services/mg-patient-view",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "BENCH_BODY": str(body_file)},
        check=True,
    )
    server_cpu, wrk_cpu = _cpu_seconds(server_pids) - server_cpu, _children_cpu_seconds() - wrk_cpu
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("JSON "))
    raw = orjson.loads(line[5:])
    requests = max(raw["requests"], 1)
    return {
        "connections": connections,
        "p50_ms": raw["p50"] / 1000,
        "p99_ms": raw["p99"] / 1000,
        "requests_per_s": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "non_2xx_or_errors": raw["errors"],
        "server_cpu_ms_per_request": round(server_cpu * 1000 / requests, 3),
        "wrk_cpu_ms_per_request": round(wrk_cpu * 1000 / requests, 3),
    }


def _floor_ms(body: bytes) -> float:
    """``orjson.loads`` p50 of the body right now: how fast the machine is during a run."""
    return _percentiles(_time(lambda: orjson.loads(body), 200))["p50_ms"]


def concurrent_runs(
    port: int, body: bytes, body_file: Path, seconds: int, runs: int, server_pids: list[int]
) -> dict[str, Any]:
    """``runs`` wrk runs at concurrency 8; the median run by throughput, and every run."""
    results = []
    for _ in range(runs):
        floor = _floor_ms(body)
        result = concurrent(port, body_file, seconds, 8, server_pids)
        if "skipped" in result:
            return result
        results.append({**result, "orjson_loads_p50_ms": floor})
    ordered = sorted(results, key=lambda r: r["requests_per_s"])
    return {**ordered[len(ordered) // 2], "runs": results}


def over_http(
    sizes: list[int],
    workers: list[int],
    requests: int,
    seconds: int,
    database_dir: Path,
    now: datetime,
    runs: int,
) -> list[dict[str, Any]]:
    rows = []
    for worker_count in workers:
        server = Server(worker_count, f"sqlite:///{database_dir}/http-{worker_count}.sqlite3")
        try:
            for size in sizes:
                body = orjson.dumps(patient_view_request(size, now=now))
                body_file = database_dir / f"body-{size}.json"
                body_file.write_bytes(body)
                rows.append(
                    {
                        "workers": worker_count,
                        "observations": size,
                        "sequential": sequential(server.port, body, requests),
                        "concurrency_8": concurrent_runs(
                            server.port, body, body_file, seconds, runs, server.pids()
                        ),
                    }
                )
            rows[-1]["server_peak_rss_mb"] = server.peak_memory_mb()
        finally:
            server.stop()
    return rows


def _table(result: dict[str, Any]) -> str:
    lines = [
        "In-process (decode → evaluate → encode), patient-view with 30 MedicationRequests:",
        "",
        "| Observations | body | p50 ms | p99 ms | orjson.loads p50 ms | ratio | µs/obs |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["in_process"]:
        lines.append(
            f"| {row['observations']:,} | {row['body_bytes'] / 1024:,.0f} KiB "
            f"| {row['evaluate']['p50_ms']:.3f} | {row['evaluate']['p99_ms']:.3f} "
            f"| {row['orjson_loads']['p50_ms']:.3f} | {row['ratio_to_orjson_loads']:.2f}× "
            f"| {row['us_per_observation']:.2f} |"
        )
    if result["http"]:
        lines += [
            "",
            "Over HTTP (`cds-service serve`, loopback; concurrency 8 with wrk, the median run):",
            "",
            "| workers | Observations | seq p50 ms | seq p99 ms "
            "| c8 p50 ms | c8 p99 ms | c8 req/s |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in result["http"]:
            c8 = row["concurrency_8"]
            c8_cells = (
                f"{c8['p50_ms']:.2f} | {c8['p99_ms']:.2f} | {c8['requests_per_s']:,.0f}"
                if "p50_ms" in c8
                else "n/a | n/a | n/a"
            )
            lines.append(
                f"| {row['workers']} | {row['observations']:,} | {row['sequential']['p50_ms']:.2f} "
                f"| {row['sequential']['p99_ms']:.2f} | {c8_cells} |"
            )
        lines += [
            "",
            "Every concurrency-8 run, with the machine's speed just before it "
            "(`orjson.loads` p50 of the same body) and the CPU time the server (all its "
            "processes and threads) and wrk spent per request:",
            "",
            "| workers | run | orjson.loads ms | c8 p50 ms | c8 p99 ms | c8 req/s "
            "| server CPU ms/req | wrk CPU ms/req |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in result["http"]:
            for number, run in enumerate(row["concurrency_8"].get("runs", ()), start=1):
                lines.append(
                    f"| {row['workers']} | {number} | {run['orjson_loads_p50_ms']:.3f} "
                    f"| {run['p50_ms']:.2f} | {run['p99_ms']:.2f} "
                    f"| {run['requests_per_s']:,.0f} | {run['server_cpu_ms_per_request']:.2f} "
                    f"| {run['wrk_cpu_ms_per_request']:.2f} |"
                )
        peaks = [
            f"{r['workers']} worker(s): {r['server_peak_rss_mb']} MiB"
            for r in result["http"]
            if "server_peak_rss_mb" in r
        ]
        lines += ["", "Server peak RSS (largest process): " + "; ".join(peaks)]
    if "cold_start" in result:
        lines += ["", format_cold_start(result["cold_start"])]
    lines += ["", f"Machine: {result['machine']}; log level {LOG_LEVEL}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10,200,1000,10000")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--http-sizes", default="200", help="sizes to measure over HTTP")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per measurement")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per configuration")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument(
        "--cold-start-runs", type=int, default=7, help="restarts to time (0: no cold start)"
    )
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (CI)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "latest.json")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    iterations, seconds = args.iterations, args.seconds
    if args.quick:
        sizes, iterations, seconds, args.runs = [10, 200], 20, 1, 1
        args.cold_start_runs = min(args.cold_start_runs, 1)
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        result: dict[str, Any] = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
            f"{platform.python_implementation()} {platform.python_version()}, "
            f"{platform.platform()}",
            "in_process": [
                in_process(
                    size,
                    iterations if size < 10000 else max(iterations // 5, 10),
                    f"sqlite:///{tmp_dir}/inproc.sqlite3",
                    now,
                )
                for size in sizes
            ],
            "http": []
            if args.no_http
            else over_http(
                [int(s) for s in args.http_sizes.split(",")],
                [int(w) for w in args.workers.split(",")],
                100 if args.quick else 1000,
                seconds,
                tmp_dir,
                now,
                args.runs,
            ),
        }
        if args.cold_start_runs and not args.no_http:
            result["cold_start"] = cold_start(args.cold_start_runs, tmp_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(_table(result))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
