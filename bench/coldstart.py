"""Cold start: ``python -m bench.coldstart [--runs 7] [--baseline DIR]``.

Spawns ``cds-service serve`` (one worker, the embedded defaults, logging at WARNING) and polls
``GET /cds-services`` until it answers; the time from spawning the process to that first answer
is one sample. The first run creates the database (migrations included); the later runs restart
on it, as a service restarts in production; like any installed package, the code is then
byte-compiled (the first start writes ``__pycache__`` even where the shell sets
``PYTHONDONTWRITEBYTECODE``). Reported: every sample and the median of the restarts, and the
CPU time the server had used by its first answer: start-up is one thread's work, so on an idle
machine the wait is about that CPU time, while on a busy one the wait grows and it barely does.

``--baseline DIR`` times another checkout of the code (e.g. ``git archive`` of an older commit)
the same way, alternating run by run with this one, so that the two medians are taken under
the same machine conditions; both then run as ``python -m cds_service.cli serve``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LOG_LEVEL = "WARNING"
_POLL_INTERVAL_S = 0.005
_GIVE_UP_S = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(port: int, *, module: bool = False) -> list[str]:
    """The installed ``cds-service`` script beside this interpreter, else ``-m cds_service``."""
    script = Path(sys.executable).parent / "cds-service"
    if script.exists() and not module:
        launcher = [str(script)]
    else:
        launcher = [sys.executable, "-m", "cds_service.cli"]
    return [*launcher, "serve", "--port", str(port)]


def _answers(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/cds-services")
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_to_first_answer(database_url: str, checkout: Path | None = None) -> tuple[float, float]:
    """Seconds from spawning ``cds-service serve`` (of ``checkout``: with ``-m`` from there) to
    its first discovery answer, and the CPU seconds the server had used by then."""
    port = _free_port()
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CDS_") and k != "PYTHONDONTWRITEBYTECODE"
        },
        "CDS_DATABASE_URL": database_url,
        "CDS_LOG_LEVEL": LOG_LEVEL,
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        serve_command(port, module=checkout is not None),
        cwd=checkout or REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        while not _answers(port):
            if process.poll() is not None:
                error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(f"cds-service serve exited: {error[-2000:]}")
            if time.perf_counter() - started > _GIVE_UP_S:
                raise RuntimeError(f"no answer within {_GIVE_UP_S:.0f} s")
            time.sleep(_POLL_INTERVAL_S)
        return time.perf_counter() - started, _cpu_seconds(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stderr:
            process.stderr.close()


def _summary(first: tuple[float, float], restarts: list[tuple[float, float]]) -> dict[str, Any]:
    waits = [wait for wait, _ in restarts]
    cpu = [used for _, used in restarts]
    return {
        "first_start_s": round(first[0], 3),
        "restarts_s": [round(sample, 3) for sample in waits],
        "median_s": round(statistics.median(waits), 3),
        "restart_cpu_s": [round(sample, 3) for sample in cpu],
        "median_cpu_s": round(statistics.median(cpu), 3),
    }


def cold_start(runs: int, database_dir: Path, baseline: Path | None = None) -> dict[str, Any]:
    """One first start (creates the database), then ``runs`` restarts on it; with ``baseline``,
    the same for that checkout (its own database), alternating with this one."""
    checkouts: dict[str, Path | None] = {"this": None}
    if baseline is not None:
        checkouts = {"this": REPO, "baseline": baseline.resolve()}
    urls = {name: f"sqlite:///{database_dir}/coldstart-{name}.sqlite3" for name in checkouts}
    first = {
        name: time_to_first_answer(urls[name], checkout) for name, checkout in checkouts.items()
    }
    restarts: dict[str, list[tuple[float, float]]] = {name: [] for name in checkouts}
    for _ in range(runs):
        for name, checkout in checkouts.items():
            restarts[name].append(time_to_first_answer(urls[name], checkout))
    result = _summary(first["this"], restarts["this"])
    if baseline is not None:
        result["baseline"] = {
            "checkout": str(baseline),
            **_summary(first["baseline"], restarts["baseline"]),
        }
    return result


def _line(label: str, result: dict[str, Any]) -> str:
    restarts = ", ".join(f"{sample:.3f}" for sample in result["restarts_s"])
    return (
        f"{label}median {result['median_s']:.3f} s over {len(result['restarts_s'])} restarts "
        f"({restarts}), the server's CPU time by then {result['median_cpu_s']:.2f} s; "
        f"the first start, which creates the database: {result['first_start_s']:.3f} s"
    )


def format_cold_start(result: dict[str, Any]) -> str:
    lines = [
        "Cold start (spawn `cds-service serve`, one worker, to the first discovery answer):",
        _line("  this code: " if "baseline" in result else "  ", result),
    ]
    if "baseline" in result:
        lines.append(_line(f"  baseline ({result['baseline']['checkout']}): ", result["baseline"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7, help="restarts to time")
    parser.add_argument("--baseline", type=Path, help="another checkout to time alternately")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        print(format_cold_start(cold_start(args.runs, Path(tmp), args.baseline)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
