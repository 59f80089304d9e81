"""The service's prefetch templates, read as the searches a FHIR server would answer.

``simulate`` fills every prefetch key the way the EHR's FHIR server would: for
``Observation?patient={{context.patientId}}&code=a|1,b|2&_sort=-date&_count=1000`` it sends the
patient's Observations with one of those codes, newest first, at most 1,000. Templates are taken
from the running content (its profile's templates), so a content change that adds a code, a
status or a whole key is simulated as the service would see it. Parameters this reading does not
know are not applied and are listed in the summary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

PATIENT_TOKEN = "{{context.patientId}}"
_JOIN_PARAMS = ("patient", "subject", "_id")
# The search parameter that filters on each type's status (Condition: its clinical status).
STATUS_PARAM = {"Condition": "clinical-status"}


@dataclass(frozen=True, slots=True)
class CodeToken:
    """``system|code``; ``system`` None matches any system (a bare code), ``code`` None any
    code of the system (``system|``); ``|code`` is a code without a system."""

    system: str | None
    code: str | None


@dataclass(frozen=True, slots=True)
class CodeFilter:
    """A ``code`` parameter compiled for lookups: exact pairs, bare codes, whole systems."""

    pairs: frozenset[tuple[str, str]]
    codes: frozenset[str]
    systems: frozenset[str]

    @classmethod
    def of(cls, tokens: tuple[CodeToken, ...]) -> CodeFilter:
        return cls(
            frozenset((t.system, t.code) for t in tokens if t.system is not None and t.code),
            frozenset(t.code for t in tokens if t.system is None and t.code),
            frozenset(t.system for t in tokens if t.system is not None and t.code is None),
        )

    def matches(self, codings: tuple[tuple[str | None, str | None], ...]) -> bool:
        for system, code in codings:
            if code is not None and (code in self.codes or (system or "", code) in self.pairs):
                return True
            if system is not None and system in self.systems:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Query:
    """One prefetch key: a read of the Patient, or a search of one resource type."""

    key: str
    resource_type: str
    read: bool
    codes: CodeFilter | None = None
    statuses: frozenset[str] | None = None
    newest_first: bool = False
    count: int | None = None
    not_applied: tuple[str, ...] = ()

    def code_matches(self, codings: tuple[tuple[str | None, str | None], ...]) -> bool:
        return self.codes is None or self.codes.matches(codings)


def _tokens(value: str) -> tuple[CodeToken, ...]:
    tokens = []
    for item in value.split(","):
        if "|" in item:
            system, code = item.split("|", 1)
            tokens.append(CodeToken(system, code or None))
        elif item:
            tokens.append(CodeToken(None, item))
    return tuple(tokens)


def parse_query(key: str, template: str) -> Query:
    path, _, query = template.strip().lstrip("/").partition("?")
    segments = path.split("/")
    if len(segments) == 2:
        if segments[1] == PATIENT_TOKEN and segments[0] == "Patient":
            return Query(key, "Patient", read=True)
        return Query(key, segments[0], read=True, not_applied=(f"{path} (sent as null)",))
    resource_type = segments[0]
    codes: CodeFilter | None = None
    statuses: frozenset[str] | None = None
    newest_first, count = False, None
    not_applied: list[str] = []
    status_param = STATUS_PARAM.get(resource_type, "status")
    joined = False
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in _JOIN_PARAMS and value in (PATIENT_TOKEN, f"Patient/{PATIENT_TOKEN}"):
            joined = True
        elif name == "code" and "{{" not in value:
            codes = CodeFilter.of(_tokens(value))
        elif name == status_param and "{{" not in value:
            statuses = frozenset(v for v in value.split(",") if v)
        elif name == "_sort" and value in ("-date", "date"):
            newest_first = value == "-date"
        elif name == "_count" and value.isdigit():
            count = int(value)
        else:
            not_applied.append(f"{name}={value}")
    if len(segments) != 1 or not joined:
        not_applied.append("(not a search of this patient's resources: answered with nothing)")
    return Query(
        key,
        resource_type,
        read=False,
        codes=codes,
        statuses=statuses,
        newest_first=newest_first,
        count=count,
        not_applied=tuple(not_applied),
    )


def parse_templates(templates: Mapping[str, str]) -> tuple[Query, ...]:
    return tuple(parse_query(key, template) for key, template in templates.items())


def searchable(query: Query) -> bool:
    """False for a template simulate cannot answer from the patient's files (always empty)."""
    return query.read or not any(note.startswith("(") for note in query.not_applied)


@dataclass(frozen=True, slots=True)
class MaskTables:
    pairs: dict[tuple[str, str], int]
    codes: dict[str, int]
    systems: dict[str, int]
    seen: dict[bytes, int] = field(default_factory=dict)
    """A concept's JSON → its bits: an export repeats a few hundred distinct concepts."""


@dataclass(frozen=True, slots=True)
class Selection:
    """What the partition keeps, over every content version simulated.

    A resource type asked for without a code filter is always kept; one asked for with code
    filters is kept when its codes match one of them, and which ones it matches travel with it
    as a bit mask, so matching is done once per resource, not once per call.
    """

    open_types: frozenset[str]
    filtered: Mapping[str, tuple[tuple[int, CodeFilter], ...]]
    bits: Mapping[tuple[int, str], int] = field(default_factory=dict)
    """(version index, prefetch key) → bit of the mask."""

    @classmethod
    def of(cls, versions: Sequence[Sequence[Query]], always: frozenset[str]) -> Selection:
        open_types = set(always)
        filtered: dict[str, list[tuple[int, CodeFilter]]] = {}
        bits: dict[tuple[int, str], int] = {}
        for index, queries in enumerate(versions):
            for query in queries:
                if query.read or not searchable(query):
                    continue
                if query.codes is None:
                    open_types.add(query.resource_type)
                    continue
                bit = len(bits)
                bits[(index, query.key)] = bit
                filtered.setdefault(query.resource_type, []).append((bit, query.codes))
        return cls(
            frozenset(open_types),
            {kind: tuple(items) for kind, items in filtered.items()},
            bits,
        )

    def mask(self, kind: str, codings: tuple[tuple[str | None, str | None], ...]) -> int:
        mask = 0
        for bit, codes in self.filtered.get(kind, ()):
            if codes.matches(codings):
                mask |= 1 << bit
        return mask

    def tables(self) -> dict[str, MaskTables]:
        """Per resource type, the filters as lookups: a coding's bits in three dict reads."""
        tables: dict[str, MaskTables] = {}
        for kind, filters in self.filtered.items():
            pairs: dict[tuple[str, str], int] = {}
            codes: dict[str, int] = {}
            systems: dict[str, int] = {}
            for bit, code_filter in filters:
                for pair in code_filter.pairs:
                    pairs[pair] = pairs.get(pair, 0) | 1 << bit
                for code in code_filter.codes:
                    codes[code] = codes.get(code, 0) | 1 << bit
                for system in code_filter.systems:
                    systems[system] = systems.get(system, 0) | 1 << bit
            tables[kind] = MaskTables(pairs, codes, systems)
        return tables

    def keeps(self, kind: str, mask: int) -> bool:
        return mask != 0 or kind in self.open_types

    @property
    def types(self) -> frozenset[str]:
        return self.open_types | frozenset(self.filtered)
