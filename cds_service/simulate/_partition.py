"""Pass 1: stream the export files and route every line to the bucket of its patient.

A Bulk Data export is one file per resource type with a patient's resources scattered through
it. Grouping them by patient in memory would hold the whole population; instead each line is
appended, unparsed, to one of ``buckets`` files on disk chosen by a hash of its patient id, so
that pass 2 can read one bucket (a bounded slice of the population) at a time and find every
resource of each of its patients there.

Files are read in chunks (byte ranges that start and end on a line boundary; a gzip file is one
chunk) so several processes can partition at once. Each chunk writes its own part of every
bucket; pass 2 reads a bucket's parts in chunk order, so the order of lines is the input order.
Each line is decoded here, once (msgspec, in C, only the members ``_records.Head`` names), and
written with a short header of what pass 2 needs; a line that is not a JSON object with a
``resourceType`` is skipped and reported with its line number. Resources no prefetch key asks
for (an Observation whose code is in no value set, an Encounter) are counted and dropped here.
"""

from __future__ import annotations

import gzip
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import IO, Protocol

import msgspec

from ..protocol import Reference
from ._queries import Selection
from ._records import SEPARATOR, Head, code_mask, decode_head, encode

# Pass 2 reads a bucket whole: this is what one holds, whatever the population's size.
BUCKET_TARGET_BYTES = 16 * 1024 * 1024
CHUNK_BYTES = 16 * 1024 * 1024
GZIP_EXPANSION = 8  # for planning only: how much larger a .ndjson.gz file is unpacked
MAX_REPORTED_PROBLEMS = 50
SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")
# What a patient id may look like here: FHIR ids are [A-Za-z0-9.-]{1,64}; be lenient, but never
# let a separator or line break through.
_PATIENT_ID = re.compile(r"^[^\x00-\x1f/]{1,256}$")


@dataclass(frozen=True, slots=True)
class InputFile:
    path: Path
    gzipped: bool
    size: int


@dataclass(frozen=True, slots=True)
class Chunk:
    """A byte range of one input file, starting at a line start (``end`` None: to the end)."""

    index: int
    file_index: int
    path: Path
    gzipped: bool
    start: int
    end: int | None


@dataclass(frozen=True, slots=True)
class Problem:
    """A line that was skipped, by its number in its file (1-based), and why."""

    file: str
    line: int
    reason: str


@dataclass
class ChunkResult:
    chunk: int
    file_index: int
    lines: int = 0
    resources: Counter[str] = field(default_factory=Counter)
    patients: int = 0
    """Patient resources routed (the progress bar's total)."""
    malformed: int = 0
    problems: list[Problem] = field(default_factory=list)
    """The first problems of this chunk, line numbers relative to the chunk's first line."""
    without_patient: Counter[str] = field(default_factory=Counter)
    not_requested: Counter[str] = field(default_factory=Counter)
    medications: int = 0
    file_error: str | None = None
    cpu_s: float = 0.0


def find_inputs(population: Path) -> list[InputFile]:
    """The NDJSON files of an export folder (``.ndjson`` or ``.ndjson.gz``), by name."""
    files = []
    for path in sorted(population.iterdir()):
        if path.is_file() and path.name.endswith(SUFFIXES):
            files.append(InputFile(path, path.name.endswith(".gz"), path.stat().st_size))
    return files


def bucket_count(files: Sequence[InputFile], workers: int) -> int:
    """Enough buckets that one holds about ``BUCKET_TARGET_BYTES``, and work for every worker."""
    estimate = sum(f.size * (GZIP_EXPANSION if f.gzipped else 1) for f in files)
    return max(4 * workers, -(-estimate // BUCKET_TARGET_BYTES), 1)


def plan_chunks(files: Sequence[InputFile]) -> list[Chunk]:
    chunks: list[Chunk] = []
    for file_index, item in enumerate(files):
        if item.gzipped or item.size <= CHUNK_BYTES:
            chunks.append(Chunk(len(chunks), file_index, item.path, item.gzipped, 0, None))
            continue
        with item.path.open("rb") as handle:
            start = 0
            while start < item.size:
                handle.seek(start + CHUNK_BYTES)
                handle.readline()  # move to the next line start
                end = min(handle.tell(), item.size)
                last = end >= item.size
                chunks.append(
                    Chunk(len(chunks), file_index, item.path, False, start, None if last else end)
                )
                start = end
    return chunks


_BLOCK = 1 << 22
# A broken archive loses the block being read when it breaks: small blocks lose little.
_GZIP_BLOCK = 1 << 16


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _blocks(handle: _Readable, size: int | None, block_size: int = _BLOCK) -> Iterator[bytes]:
    """``size`` bytes of ``handle`` (all, if None) in blocks."""
    while size is None or size > 0:
        block = handle.read(block_size if size is None else min(block_size, size))
        if not block:
            return
        if size is not None:
            size -= len(block)
        yield block


def _split(blocks: Iterator[bytes]) -> Iterator[list[bytes]]:
    """The lines (without the line break) of each block; a line cut by a block boundary is
    completed with the next block. Lists, not lines: no generator step per line."""
    carry = b""
    for block in blocks:
        lines = (carry + block).split(b"\n") if carry else block.split(b"\n")
        carry = lines.pop()
        yield lines
    if carry:
        yield [carry]


def _lines(chunk: Chunk, result: ChunkResult) -> Iterator[list[bytes]]:
    if chunk.gzipped:
        try:
            with gzip.open(chunk.path, "rb") as gz:
                yield from _split(_blocks(gz, None, _GZIP_BLOCK))
        except (OSError, EOFError, zlib.error) as exc:
            # A truncated or corrupt archive: what was read so far is used.
            result.file_error = f"gzip stream broken: {exc}"
        return
    with chunk.path.open("rb") as handle:
        handle.seek(chunk.start)
        size = None if chunk.end is None else chunk.end - chunk.start
        yield from _split(_blocks(handle, size))


def _reason(exc: Exception) -> str:
    if isinstance(exc, msgspec.ValidationError):
        return "not a JSON object"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return "not valid JSON"


Route = tuple[Callable[[bytes], int], bytes]


class _BucketWriter:
    """Buffered appends to this chunk's part of every bucket."""

    def __init__(self, work_dir: Path, chunk: int, buckets: int) -> None:
        self.work_dir = work_dir
        self.chunk = chunk
        self.buckets = buckets
        self.handles: dict[int, IO[bytes]] = {}

    def route(self, patient_id: str) -> Route:
        """Where this patient's lines go, and the prefix each one gets."""
        key = patient_id.encode()
        bucket = zlib.crc32(key) % self.buckets
        handle = self.handles.get(bucket)
        if handle is None:
            handle = part_path(self.work_dir, bucket, self.chunk).open("wb", buffering=1 << 16)
            self.handles[bucket] = handle
        return handle.write, key + SEPARATOR

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()


def part_path(work_dir: Path, bucket: int, chunk: int) -> Path:
    return work_dir / f"bucket-{bucket:05d}.{chunk:05d}.part"


def medication_part_path(work_dir: Path, chunk: int) -> Path:
    return work_dir / f"medications.{chunk:05d}.part"


@dataclass(frozen=True, slots=True)
class _Counts:
    """Lines of a chunk by resource type: routed, not asked for, or without a patient."""

    resources: dict[str, int] = field(default_factory=dict)
    not_requested: dict[str, int] = field(default_factory=dict)
    without_patient: dict[str, int] = field(default_factory=dict)

    def add_to(self, result: ChunkResult) -> None:
        result.resources.update(self.resources)
        result.patients = self.resources.get("Patient", 0)
        result.not_requested.update(self.not_requested)
        result.without_patient.update(self.without_patient)


class _MedicationWriter:
    """This chunk's Medication resources by id (shared by patients, so in no bucket); the file
    is created with the first one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[bytes] | None = None

    def write(self, head: Head, line: bytes) -> bool:
        """False for a Medication without an id to look it up by (nothing is written)."""
        if type(head.id) is not str or not head.id.isprintable():
            return False
        if self.handle is None:
            self.handle = self.path.open("wb")
        self.handle.write(head.id.encode() + SEPARATOR + line + b"\n")
        return True

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def partition_chunk(
    chunk: Chunk, work_dir: Path, buckets: int, selection: Selection
) -> ChunkResult:
    """Route the lines of one chunk to the buckets of their patients."""
    started = time.process_time()
    result = ChunkResult(chunk.index, chunk.file_index)
    counts = _Counts()
    writer = _BucketWriter(work_dir, chunk.index, buckets)
    medications = _MedicationWriter(medication_part_path(work_dir, chunk.index))
    try:
        _route_lines(chunk, selection, writer, medications, counts, result)
    finally:
        writer.close()
        medications.close()
    if result.file_error:
        result.file_error += f" (after line {result.lines}; the lines before it were used)"
    counts.add_to(result)
    result.cpu_s = time.process_time() - started
    return result


def _route_lines(
    chunk: Chunk,
    selection: Selection,
    writer: _BucketWriter,
    medications: _MedicationWriter,
    counts: _Counts,
    result: ChunkResult,
) -> None:
    """Decode each line of the chunk once and write it to its patient's bucket, or count why not.

    The loop runs once per line of the export, so it keeps Python work per line small: a
    patient's route is resolved once per reference and remembered, code filters are dict
    lookups, and counts are plain dicts.
    """
    name = chunk.path.name
    wanted = selection.types
    tables = selection.tables()
    open_types = selection.open_types
    routes: dict[str, Route | None] = {}
    resources, not_requested = counts.resources, counts.not_requested
    without_patient = counts.without_patient
    count = 0
    try:
        for raw in chain.from_iterable(_lines(chunk, result)):
            count += 1
            line = raw.strip()
            if not line:
                continue
            try:
                head = decode_head(line)
            except (msgspec.DecodeError, RecursionError) as exc:
                _problem(result, name, count, _reason(exc))
                continue
            kind = head.resourceType
            if type(kind) is not str or not kind:
                _problem(result, name, count, "no resourceType")
                continue
            if kind == "Medication":
                if not medications.write(head, line):
                    _problem(result, name, count, "Medication without an id")
                    continue
                result.medications += 1
                resources[kind] = resources.get(kind, 0) + 1
                continue
            target = _patient_reference(kind, head)
            if type(target) is not str:
                route = None
            elif target in routes:
                route = routes[target]
            else:
                route = _resolve(routes, target, writer)
            if route is None:
                without_patient[kind] = without_patient.get(kind, 0) + 1
                continue
            mask = 0
            if kind != "Patient":
                if kind not in wanted:
                    not_requested[kind] = not_requested.get(kind, 0) + 1
                    continue
                table = tables.get(kind)
                if table is not None:
                    mask = code_mask(head, table)
                    if not mask and kind not in open_types:
                        not_requested[kind] = not_requested.get(kind, 0) + 1
                        continue
            write, prefix = route
            write(encode(prefix, kind, head, mask, line))
            resources[kind] = resources.get(kind, 0) + 1
    finally:
        result.lines = count


def _patient_reference(kind: str, head: Head) -> object:
    """The reference to the resource's patient (a Patient's to itself); a str, if usable."""
    if kind == "Patient":
        return f"Patient/{head.id}" if type(head.id) is str else None
    reference = head.subject if type(head.subject) is Reference else head.patient
    return reference.reference if type(reference) is Reference else None


def _resolve(routes: dict[str, Route | None], target: str, writer: _BucketWriter) -> Route | None:
    """The route of a patient reference not seen yet, remembered (the memory kept bounded)."""
    if len(routes) > 100_000:
        routes.clear()
    patient_id = _patient_id(target)
    route = routes[target] = writer.route(patient_id) if patient_id else None
    return route


def _patient_id(reference: str) -> str | None:
    """``Patient/x``, ``http://base/Patient/x`` or ``.../Patient/x/_history/2`` → ``x``."""
    parts = reference.strip().split("/_history/")[0].rstrip("/").split("/")
    if len(parts) < 2 or parts[-2] != "Patient":
        return None
    patient_id = parts[-1]
    return patient_id if _PATIENT_ID.match(patient_id) else None


def _problem(result: ChunkResult, name: str, line: int, reason: str) -> None:
    result.malformed += 1
    if len(result.problems) < MAX_REPORTED_PROBLEMS:
        result.problems.append(Problem(name, line, reason))


def absolute_problems(results: Sequence[ChunkResult], limit: int) -> list[Problem]:
    """Chunk-relative line numbers made absolute: the lines of earlier chunks of a file added."""
    offset: dict[int, int] = {}
    problems: list[Problem] = []
    for result in sorted(results, key=lambda r: r.chunk):
        before = offset.get(result.file_index, 0)
        problems.extend(Problem(p.file, p.line + before, p.reason) for p in result.problems)
        offset[result.file_index] = before + result.lines
    return problems[:limit]
