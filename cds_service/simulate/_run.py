"""``cds-service simulate``: the whole run, from an export folder to the three output files."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import platform
import resource
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

import orjson

from ..content import Content, ContentError
from ..profile import build_profile, load_site_content
from ._partition import (
    MAX_REPORTED_PROBLEMS,
    Chunk,
    ChunkResult,
    InputFile,
    absolute_problems,
    bucket_count,
    find_inputs,
    medication_part_path,
    part_path,
    plan_chunks,
)
from ._progress import ProgressBar
from ._queries import Query, Selection, parse_templates
from ._records import SEPARATOR
from ._report import render_report
from ._summary import HOOKS, headline_table, version_summary
from ._tally import Tally
from ._worker import (
    BucketResult,
    BucketTask,
    Worker,
    WorkerConfig,
    evaluate_in_process,
    init_process,
    partition_in_process,
    prepare_for_fork,
    release_prepared,
)

# ServiceRequests are never asked for by a prefetch key, but an order placed together with a
# medication is part of that order-sign (a serum Mg order, for instance).
_SESSION_TYPES = frozenset({"ServiceRequest"})
_T = TypeVar("_T")
_R = TypeVar("_R")


def _ready(_: int) -> bool:
    return True


class SimulationError(Exception):
    """The simulation cannot run (no input, invalid content): the message says why."""


@dataclass(frozen=True, slots=True)
class SimulateOptions:
    population: Path
    out: Path
    at: datetime
    since: datetime
    cards: Path
    hooks: tuple[str, ...] = HOOKS
    compare: Path | None = None
    workers: int = 1
    with_detail: bool = False
    hash_key: str = ""
    progress: bool = False
    progress_stream: TextIO = sys.stdout
    settle_heap: bool = False
    """Tune the GC as the server does; for a process that runs nothing else (the CLI)."""


def content_digest(directory: Path) -> str:
    """A short fingerprint of a content version (every file under it), to tell versions apart."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _load(directory: Path) -> Content:
    try:
        return load_site_content(directory)
    except ContentError as exc:
        raise SimulationError(f"cards/ is invalid: {exc}") from None


def _modes(content: Content) -> dict[str, str]:
    """Per topic: live, silent, or off (not enabled)."""
    modes: dict[str, str] = {}
    for code, compiled in content.topics.items():
        topic = compiled.topic
        modes[code] = topic.mode if topic.enabled else "off"
    return modes


def _merge_problems(results: list[ChunkResult], files: list[InputFile]) -> dict[str, Any]:
    resources: Counter[str] = Counter()
    without: Counter[str] = Counter()
    not_requested: Counter[str] = Counter()
    for result in results:
        resources.update(result.resources)
        without.update(result.without_patient)
        not_requested.update(result.not_requested)
    return {
        "resources": dict(sorted(resources.items())),
        "malformed_lines": sum(r.malformed for r in results),
        "first_malformed": [
            {"file": p.file, "line": p.line, "reason": p.reason}
            for p in absolute_problems(results, MAX_REPORTED_PROBLEMS)
        ],
        "without_patient": dict(sorted(without.items())),
        "not_requested": dict(sorted(not_requested.items())),
        "file_errors": [
            {"file": files[r.file_index].path.name, "error": r.file_error}
            for r in results
            if r.file_error
        ],
    }


def _medication_db(work_dir: Path, chunks: list[Chunk], results: list[ChunkResult]) -> Path | None:
    """Medications are shared by patients: kept on disk and looked up by id (first one wins)."""
    if not any(r.medications for r in results):
        return None
    path = work_dir / "medications.sqlite"
    db = sqlite3.connect(path)
    try:
        # A scratch file for this run: no journal, no fsync.
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.execute("CREATE TABLE medication (id TEXT PRIMARY KEY, raw BLOB NOT NULL)")
        for chunk in chunks:
            part = medication_part_path(work_dir, chunk.index)
            if not part.exists():
                continue
            with part.open("rb") as handle:
                rows = (line.rstrip(b"\n").partition(SEPARATOR) for line in handle)
                db.executemany(
                    "INSERT OR IGNORE INTO medication VALUES (?, ?)",
                    ((key.decode(), raw) for key, _, raw in rows if key),
                )
        db.commit()
    finally:
        db.close()
    return path


def _concatenate(parts: Iterable[Path], target: Path) -> None:
    with target.open("wb") as out:
        for part in parts:
            if part.exists():
                with part.open("rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 20)


class _Runner:
    """Runs tasks in this process (one worker) or in a process pool.

    The services are built before any work starts (in this process, then forked into every
    worker where the platform forks), so start-up is not in either pass's timing.
    """

    def __init__(self, config: WorkerConfig, workers: int, progress: ProgressBar) -> None:
        """``progress``: the patient bar; ``partition`` shows its own bar of parts read."""
        self.workers = workers
        self.done = 0
        self.progress = progress
        self.pool: Any = None
        self.local: Worker | None = None
        if workers > 1:
            methods = multiprocessing.get_all_start_methods()
            fork = "fork" in methods
            context = multiprocessing.get_context("fork" if fork else "spawn")
            if fork:
                prepare_for_fork(config)
            self.counter = context.Value("q", 0)
            self.pool = context.Pool(workers, init_process, (config, self.counter))
            # The pool is up; forked workers start with their services built.
            self.pool.map(_ready, range(workers), chunksize=1)
            release_prepared()
        else:
            self.local = Worker(config, self._count)
            self.local.versions()

    def _count(self, patients: int) -> None:
        self.done += patients
        self.progress.update(self.done)

    def patients_done(self) -> int:
        if self.pool is not None:
            return int(self.counter.value)
        return self.done

    def partition(self, chunks: list[Chunk]) -> list[ChunkResult]:
        bar = ProgressBar(
            self.progress.stream,
            enabled=self.progress.enabled,
            label="reading ",
            total=len(chunks),
            unit="parts",
        )
        results: list[ChunkResult] = []
        if self.local is not None:
            for chunk in chunks:
                results.append(self.local.partition(chunk))
                bar.update(len(results))
        else:
            for result in self._unordered(partition_in_process, chunks, patients=False):
                results.append(result)
                bar.update(len(results))
        bar.finish(len(results), keep=False)
        return results

    def evaluate(self, tasks: list[BucketTask]) -> Iterator[BucketResult]:
        if self.local is not None:
            for task in tasks:
                yield self.local.evaluate(task)
            return
        yield from self._unordered(evaluate_in_process, tasks)

    def _unordered(
        self, function: Any, items: list[Any], *, patients: bool = True
    ) -> Iterator[Any]:
        pending = self.pool.imap_unordered(function, items)
        received = 0
        while received < len(items):
            try:
                item = pending.next(timeout=0.2)
            except multiprocessing.TimeoutError:
                if patients:
                    self.progress.update(self.patients_done())
                continue
            received += 1
            if patients:
                self.progress.update(self.patients_done())
            yield item

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool.join()


@dataclass(frozen=True, slots=True)
class _Version:
    """One content version simulated: its cards/ directory, loaded, and its prefetch templates
    read as searches of the export."""

    directory: Path
    content: Content
    queries: tuple[Query, ...]


@dataclass(frozen=True, slots=True)
class _Passes:
    """What the two passes found, and when each ended (``time.perf_counter``)."""

    chunk_results: list[ChunkResult]
    bucket_results: list[BucketResult]
    tallies: list[Tally]
    """Per content version, every bucket's counts merged."""
    patients: int
    partitioned: float
    evaluated: float


def simulate(options: SimulateOptions) -> dict[str, Any]:
    """Run the simulation; writes summary.json, cards.ndjson and report.html into ``out``."""
    started = time.perf_counter()
    files = _inputs(options.population)
    versions = _load_versions(options)
    options.out.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix=".simulate-", dir=options.out))
    workers = max(1, options.workers)
    config = _worker_config(options, versions, work_dir, bucket_count(files, workers))
    progress = ProgressBar(
        options.progress_stream, enabled=options.progress, label="simulate", total=None
    )
    runner = _Runner(config, workers, progress)
    ready = time.perf_counter()
    try:
        passes = _run_passes(runner, config, files, progress, options.out)
    finally:
        runner.close()
        shutil.rmtree(work_dir, ignore_errors=True)
    finished = time.perf_counter()
    summary: dict[str, Any] = {
        "simulation": _simulation(options, workers),
        "population": _population(options.population, files, passes),
    }
    summary.update(_version_summary(versions[0], passes.tallies[0], options.hooks, passes.patients))
    not_applied = sorted({n for v in versions for q in v.queries for n in q.not_applied})
    if not_applied:
        summary["simulation"]["prefetch_parameters_not_applied"] = not_applied
    if options.compare is not None:
        compare = _version_summary(versions[1], passes.tallies[1], options.hooks, passes.patients)
        compare["cards_dir"] = str(options.compare)
        compare["content_digest"] = content_digest(options.compare)
        summary["compare"] = compare
    summary["timing"] = _timing(passes, len(versions), started, ready, finished)
    summary["memory"] = _memory(passes, config.buckets)
    summary["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}"
    )
    summary["generated_at"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    (options.out / "summary.json").write_bytes(
        orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n"
    )
    (options.out / "report.html").write_text(render_report(summary), encoding="utf-8")
    return summary


def _inputs(population: Path) -> list[InputFile]:
    """The export's NDJSON files; none is an error the user is told about."""
    if not population.is_dir():
        raise SimulationError(f"{population}: not a directory")
    files = find_inputs(population)
    if not files:
        raise SimulationError(
            f"{population}: no .ndjson or .ndjson.gz files (a FHIR Bulk Data export)"
        )
    return files


def _load_versions(options: SimulateOptions) -> list[_Version]:
    """``--cards``, and the ``--compare`` version if there is one."""
    directories = [options.cards]
    if options.compare is not None:
        directories.append(options.compare)
    contents = [_load(directory) for directory in directories]
    queries = [parse_templates(build_profile(content).templates) for content in contents]
    return [_Version(*version) for version in zip(directories, contents, queries, strict=True)]


def _worker_config(
    options: SimulateOptions, versions: list[_Version], work_dir: Path, buckets: int
) -> WorkerConfig:
    """What every worker is sent; without a configured hash key, a key for this run only."""
    queries = [version.queries for version in versions]
    return WorkerConfig(
        versions=tuple((version.directory, version.queries) for version in versions),
        hash_key=options.hash_key or secrets.token_hex(32),
        hooks=frozenset(options.hooks),
        at=options.at.timestamp(),
        since=options.since.timestamp(),
        with_detail=options.with_detail,
        work_dir=work_dir,
        buckets=buckets,
        selection=Selection.of(queries, _SESSION_TYPES),
        settle_heap=options.settle_heap,
    )


def _run_passes(
    runner: _Runner, config: WorkerConfig, files: list[InputFile], progress: ProgressBar, out: Path
) -> _Passes:
    """Partition the export into buckets, evaluate every bucket, and gather the cards listed."""
    work_dir = config.work_dir
    chunks = plan_chunks(files)
    chunk_results = runner.partition(chunks)
    partitioned = time.perf_counter()
    progress.total = sum(r.patients for r in chunk_results) or None
    progress.started = time.monotonic()
    medication_db = _medication_db(work_dir, chunks, chunk_results)
    tasks = _bucket_tasks(work_dir, chunks, config.buckets, medication_db)
    tallies = [Tally() for _ in config.versions]
    bucket_results: list[BucketResult] = []
    for result in runner.evaluate(tasks):
        bucket_results.append(result)
        for tally, part in zip(tallies, result.tallies, strict=True):
            tally.merge(part)
    patients = sum(r.patients for r in bucket_results)
    progress.finish(patients)
    evaluated = time.perf_counter()
    runner.close()
    order = sorted(bucket_results, key=lambda r: r.bucket)
    names = ["cards.ndjson", "cards.compare.ndjson"]
    for index in range(len(config.versions)):
        _concatenate((r.card_files[index] for r in order), out / names[index])
    return _Passes(chunk_results, bucket_results, tallies, patients, partitioned, evaluated)


def _bucket_tasks(
    work_dir: Path, chunks: list[Chunk], buckets: int, medication_db: Path | None
) -> list[BucketTask]:
    """A task per bucket that has lines, the largest first."""
    sizes = {
        bucket: sum(
            part_path(work_dir, bucket, c.index).stat().st_size
            for c in chunks
            if part_path(work_dir, bucket, c.index).exists()
        )
        for bucket in range(buckets)
    }
    return [
        BucketTask(bucket, medication_db)
        for bucket in sorted(sizes, key=lambda b: -sizes[b])
        if sizes[bucket]
    ]


def _simulation(options: SimulateOptions, workers: int) -> dict[str, Any]:
    """How the simulation was run."""
    return {
        "at": options.at.isoformat().replace("+00:00", "Z"),
        "orders_since": options.since.isoformat().replace("+00:00", "Z"),
        "hooks": list(options.hooks),
        "cards_dir": str(options.cards),
        "content_digest": content_digest(options.cards),
        "workers": workers,
        "patient_hash": "keyed (CDS_PATIENT_HASH_KEY)" if options.hash_key else "keyed, per run",
    }


def _population(directory: Path, files: list[InputFile], passes: _Passes) -> dict[str, Any]:
    """What was read: the files, the resources and patients, and what could not be used."""
    population = _merge_problems(passes.chunk_results, files)
    population.update(
        directory=str(directory),
        files=[
            {
                "name": f.path.name,
                "gzip": f.gzipped,
                "bytes": f.size,
                "lines": sum(r.lines for r in passes.chunk_results if r.file_index == i),
            }
            for i, f in enumerate(files)
        ],
        patients=passes.patients,
        patients_without_patient_resource=sum(
            r.without_patient_resource for r in passes.bucket_results
        ),
    )
    return population


def _version_summary(
    version: _Version, tally: Tally, hooks: tuple[str, ...], patients: int
) -> dict[str, Any]:
    """The counts of one content version, its topics in the order its content lists them."""
    return version_summary(
        tally,
        topics=list(version.content.topics),
        modes=_modes(version.content),
        hooks=hooks,
        patients=patients,
    )


def _timing(
    passes: _Passes, versions: int, started: float, ready: float, finished: float
) -> dict[str, Any]:
    """Wall-clock time of each stage, CPU time of both passes, and the rates they give."""
    patients = passes.patients
    cpu = sum(r.cpu_s for r in passes.bucket_results)
    partition_cpu = sum(r.cpu_s for r in passes.chunk_results)
    calls = sum(passes.tallies[0].calls.values())
    evaluate_s = passes.evaluated - passes.partitioned
    return {
        "startup_s": round(ready - started, 3),
        "partition_s": round(passes.partitioned - ready, 3),
        "evaluate_s": round(evaluate_s, 3),
        "total_s": round(finished - started, 3),
        "hook_calls": calls * versions,
        "patients_per_s": round(patients / evaluate_s, 1) if evaluate_s else None,
        "patients_per_s_overall": round(patients / (finished - started), 1),
        "hook_calls_per_s": round(calls * versions / evaluate_s, 1) if evaluate_s else None,
        "partition_cpu_s": round(partition_cpu, 3),
        "evaluate_cpu_s": round(cpu, 3),
        "hook_calls_per_cpu_s": round(calls * versions / cpu, 1) if cpu else None,
        # Both passes, every process; start-up (imports, loading the content) excluded.
        "patients_per_cpu_s": (
            round(patients / (cpu + partition_cpu), 1) if cpu + partition_cpu else None
        ),
    }


def _memory(passes: _Passes, buckets: int) -> dict[str, Any]:
    """Peak resident memory of this process and of the busiest worker."""
    return {
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "worker_peak_rss_mib": round(
            max((r.peak_rss_kib for r in passes.bucket_results), default=0) / 1024, 1
        ),
        "buckets": buckets,
    }


__all__ = ["SimulateOptions", "SimulationError", "headline_table", "simulate"]
