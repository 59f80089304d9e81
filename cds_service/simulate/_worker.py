"""What each worker process runs: partition a chunk (pass 1), evaluate a bucket (pass 2)."""

from __future__ import annotations

import resource
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

from .._logging import configure_logging
from ..app import settle_heap
from ..gathering import FetchPolicy, FhirFetchError
from ..pipeline import CdsService
from ..profile import load_site_content
from ..settings import Settings
from ._calls import Patient, SimulatedClock, Version, simulate_patient
from ._partition import Chunk, ChunkResult, partition_chunk
from ._queries import Query, Selection
from ._records import SEPARATOR
from ._tally import Tally

# Progress is published every this many patients (a shared counter costs a lock).
_PROGRESS_EVERY = 16


class NoFhirServer:
    """Simulation never reaches a FHIR server: every prefetch key is filled in from the files."""

    def get_json(
        self, url: str, *, bearer: str | None, timeout_s: float, policy: FetchPolicy
    ) -> object:
        raise FhirFetchError("no FHIR server in a simulation")


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Everything a worker needs, picklable (sent once to each process)."""

    versions: tuple[tuple[Path, tuple[Query, ...]], ...]
    """The cards directory of each content version, and its templates read as searches."""
    hash_key: str
    hooks: frozenset[str]
    at: float
    since: float
    with_detail: bool
    work_dir: Path
    buckets: int
    selection: Selection
    settle_heap: bool = False
    """Tune the GC as the server does (in a process that runs nothing else)."""


@dataclass(frozen=True, slots=True)
class BucketTask:
    bucket: int
    medication_db: Path | None


@dataclass
class BucketResult:
    bucket: int
    tallies: list[Tally]
    patients: int = 0
    without_patient_resource: int = 0
    cpu_s: float = 0.0
    peak_rss_kib: int = 0
    card_files: list[Path] = field(default_factory=list)


def build_versions(config: WorkerConfig) -> list[Version]:
    settings = Settings(_env_file=None, patient_hash_key=config.hash_key)
    versions = []
    for index, (directory, queries) in enumerate(config.versions):
        content = load_site_content(directory)
        clock = SimulatedClock()
        service = CdsService(
            settings=settings, content=content, store=None, fhir_client=NoFhirServer(), clock=clock
        )
        bits = {
            key: bit for (version, key), bit in config.selection.bits.items() if version == index
        }
        versions.append(Version(index, service, queries, bits, clock, config.hash_key))
    return versions


class Worker:
    """The per-process state: the services (built once) and the shared progress counter."""

    def __init__(
        self,
        config: WorkerConfig,
        progress: Synchronized[int] | Callable[[int], None] | None = None,
    ) -> None:
        self.config = config
        self.progress = progress
        self._versions: list[Version] | None = None
        self._db: sqlite3.Connection | None = None
        self._db_path: Path | None = None

    def versions(self) -> list[Version]:
        if self._versions is None:
            self._versions = build_versions(self.config)
            if self.config.settle_heap:
                # As the server does: the content frozen out of the GC, and collections that
                # do not run inside every call.
                settle_heap()
        return self._versions

    def partition(self, chunk: Chunk) -> ChunkResult:
        config = self.config
        return partition_chunk(chunk, config.work_dir, config.buckets, config.selection)

    def _medication_lookup(self, path: Path | None) -> Callable[[str], bytes | None]:
        if path is None:
            return lambda reference: None
        if self._db_path != path:
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            self._db_path = path
        db = self._db
        assert db is not None

        @lru_cache(maxsize=4096)
        def lookup(reference: str) -> bytes | None:
            row = db.execute(
                "SELECT raw FROM medication WHERE id = ?", (reference[11:],)
            ).fetchone()
            return bytes(row[0]) if row else None

        return lookup

    def _publish(self, patients: int) -> None:
        progress = self.progress
        if progress is None or not patients:
            return
        if callable(progress):
            progress(patients)
        else:
            with progress.get_lock():
                progress.value += patients

    def evaluate(self, task: BucketTask) -> BucketResult:
        config = self.config
        versions = self.versions()
        started = time.process_time()
        for version in versions:
            version.tally = Tally()
        lookup = self._medication_lookup(task.medication_db)
        groups: dict[bytes, list[list[bytes]]] = {}
        for part in sorted(config.work_dir.glob(f"bucket-{task.bucket:05d}.*.part")):
            for line in part.read_bytes().split(b"\n"):
                if line:
                    fields = line.split(SEPARATOR, 9)
                    groups.setdefault(fields[0], []).append(fields)
        result = BucketResult(task.bucket, [])
        outputs = [
            config.work_dir / f"cards-{index}-{task.bucket:05d}.ndjson"
            for index in range(len(versions))
        ]
        handles = [path.open("wb", buffering=1 << 16) for path in outputs]
        unpublished = 0
        try:
            for key, raws in groups.items():
                patient = Patient(key.decode(), raws)
                result.patients += 1
                result.without_patient_resource += patient.patient_raw is None
                for version, handle in zip(versions, handles, strict=True):
                    simulate_patient(
                        patient,
                        version,
                        lookup,
                        handle,
                        hooks=config.hooks,
                        at=config.at,
                        since=config.since,
                        with_detail=config.with_detail,
                    )
                unpublished += 1
                if unpublished >= _PROGRESS_EVERY:
                    self._publish(unpublished)
                    unpublished = 0
        finally:
            for handle in handles:
                handle.close()
        self._publish(unpublished)
        result.tallies = [version.tally for version in versions]
        result.card_files = outputs
        result.cpu_s = time.process_time() - started
        result.peak_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return result


# -- process pool entry points -----------------------------------------------------------------

_worker: Worker | None = None
# Built in the parent before the pool forks: every worker starts with the services ready.
_prepared: Worker | None = None


def prepare_for_fork(config: WorkerConfig) -> None:
    global _prepared
    _prepared = Worker(replace(config, settle_heap=True))
    _prepared.versions()


def release_prepared() -> None:
    """Once the pool has forked: a worker the pool starts later builds its own services."""
    global _prepared
    _prepared = None


def init_process(config: WorkerConfig, progress: Synchronized[int]) -> None:
    global _worker
    # Per-call info lines would be most of the work; warnings about odd data are counted in the
    # summary instead of printed once per patient.
    configure_logging("ERROR")
    if _prepared is not None:
        _worker = _prepared
        _worker.progress = progress
    else:  # a spawned process: nothing was inherited
        _worker = Worker(replace(config, settle_heap=True), progress)
        _worker.versions()


def partition_in_process(chunk: Chunk) -> ChunkResult:
    assert _worker is not None
    return _worker.partition(chunk)


def evaluate_in_process(task: BucketTask) -> BucketResult:
    assert _worker is not None
    return _worker.evaluate(task)
