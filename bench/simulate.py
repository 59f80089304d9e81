"""Simulate throughput and memory: ``python -m bench.simulate [--quick] [--out FILE]``.

Generates the synthetic transplant clinic (``fixtures/population``) at 2,000 and 10,000 patients
and runs ``cds-service simulate`` on it as a user would (a separate process per run):

- patient-views only, with 1 and 2 workers: patients per second (wall, both passes) and per
  CPU-second of all processes (partition and evaluation; start-up excluded), and of the
  evaluation pass alone, so throughput per core and scaling with ``--workers`` can be read side
  by side;
- every hook (patient-view, order-select, order-sign) once, for the hook calls per second;
- peak memory (VmHWM) of the largest process, at 2,000 and 10,000 patients: it must not grow
  with the population.

Each configuration runs ``--runs`` times (default 3); the table shows the median run by wall
time, with every run in the JSON. This VM's speed drifts with other work on it: the machine's
speed just before each run (``orjson.loads`` of a fixed body) is recorded beside it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from datetime import time as day_time
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
ALL_HOOKS = "patient-view,order-select,order-sign"


def _machine_speed_ms() -> float:
    """``orjson.loads`` of a fixed 180 KiB body, p50 of 50: how fast the VM is right now."""
    body = orjson.dumps([{"id": i, "v": [i / 3] * 20, "t": "x" * 40} for i in range(900)])
    samples = []
    for _ in range(50):
        started = time.perf_counter()
        orjson.loads(body)
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1000, 3)


def generate(out: Path, patients: int, end: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fixtures.population.generate",
            "--out",
            str(out),
            "--patients",
            str(patients),
            "--seed",
            "7",
            "--end",
            end,
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def simulate(population: Path, out: Path, workers: int, hooks: str, at: str) -> dict[str, Any]:
    speed = _machine_speed_ms()
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cds_service.cli",
            "simulate",
            str(population),
            "--at",
            at,
            "--out",
            str(out),
            "--workers",
            str(workers),
            "--hooks",
            hooks,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "CDS_PATIENT_HASH_KEY": "bench"},
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    summary = orjson.loads((out / "summary.json").read_bytes())
    timing, memory = summary["timing"], summary["memory"]
    patients = summary["population"]["patients"]
    busy = timing["partition_s"] + timing["evaluate_s"]
    cpu = timing["partition_cpu_s"] + timing["evaluate_cpu_s"]
    return {
        "workers": workers,
        "hooks": hooks,
        "patients": patients,
        "hook_calls": timing["hook_calls"],
        "machine_orjson_loads_ms": speed,
        "command_wall_s": round(wall, 2),
        "partition_s": timing["partition_s"],
        "evaluate_s": timing["evaluate_s"],
        "patients_per_s": round(patients / busy, 1),
        "hook_calls_per_s": round(timing["hook_calls"] / busy, 1),
        "patients_per_cpu_s": round(patients / cpu, 1),
        "evaluation_patients_per_cpu_s": round(patients / timing["evaluate_cpu_s"], 1),
        "cpu_ms_per_patient": round(cpu * 1000 / patients, 3),
        "peak_rss_mib": max(memory["peak_rss_mib"], memory["worker_peak_rss_mib"]),
        "buckets": memory["buckets"],
    }


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda r: r["partition_s"] + r["evaluate_s"])
    return {**ordered[len(ordered) // 2], "runs": runs}


def _table(result: dict[str, Any]) -> str:
    lines = [
        "| patients | hooks | workers | partition s | evaluate s | patients/s | per worker "
        "| patients per CPU-s | (evaluation only) | CPU ms/patient | hook calls/s "
        "| peak RSS MiB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["runs"]:
        hooks = "patient-view" if row["hooks"] == "patient-view" else "all three"
        lines.append(
            f"| {row['patients']:,} | {hooks} | {row['workers']} | {row['partition_s']:.2f} "
            f"| {row['evaluate_s']:.2f} | {row['patients_per_s']:,.0f} "
            f"| {row['patients_per_s'] / row['workers']:,.0f} "
            f"| {row['patients_per_cpu_s']:,.0f} | {row['evaluation_patients_per_cpu_s']:,.0f} "
            f"| {row['cpu_ms_per_patient']:.3f} "
            f"| {row['hook_calls_per_s']:,.0f} | {row['peak_rss_mib']:.0f} |"
        )
    lines += ["", f"Machine: {result['machine']}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="2000,10000")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a small smoke run (CI)")
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "simulate-latest.json"
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    runs = args.runs
    if args.quick:
        sizes, workers, runs = [60], [1, 2], 1
    end = datetime.combine(datetime.now(UTC).date(), day_time(12), UTC)
    end_text = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}",
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for size in sizes:
            population = root / f"clinic-{size}"
            seconds = generate(population, size, end_text)
            print(f"generated {size:,} patients in {seconds:.1f} s", file=sys.stderr)
            configurations = [(w, "patient-view") for w in workers]
            if size == sizes[0]:
                configurations += [(w, ALL_HOOKS) for w in workers]
            for worker_count, hooks in configurations:
                measured = [
                    simulate(
                        population,
                        root / f"out-{size}-{worker_count}-{n}",
                        worker_count,
                        hooks,
                        end_text,
                    )
                    for n in range(runs)
                ]
                row = _median(measured)
                result["runs"].append(row)
                print(
                    f"{size:,} patients, {hooks}, {worker_count} worker(s): "
                    f"{row['patients_per_s']:,.0f} patients/s",
                    file=sys.stderr,
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(_table(result))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
