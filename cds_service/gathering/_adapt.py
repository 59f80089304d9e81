"""Fallback searches that fit the FHIR server: its page size, its sorting, its resource types.

Pure functions: what a fallback URL asks for (``Target``), the same URL with another ``_count``
or without ``_sort``, what a rejected request says the server does not support (``classify``),
and the local sort that replaces a dropped ``_sort``.

What counts as "unsupported" is decided narrowly, because a type taken as unsupported is "no
data" for an hour (see ``_memory``): a 404 to a type search (the type has no endpoint), or a
400/404/405/422/501 whose OperationOutcome has the issue code ``not-supported`` or says, in so
many words, that the type is not supported. A 404 to a read is "not found", never "unsupported",
unless its OperationOutcome says so. An outcome that names another search parameter of ours
(``patient``, ``code``, ``status``) is a plain failure: the server has the type but not that
question. A 400 or 422 whose outcome names ``_count`` or ``_sort`` is a rejected page size or
sort, retried once without it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from ..protocol import Period, Resource

DEFAULT_SMALLER_PAGE = 100
"""The ``_count`` to retry with when the server's rejection states no maximum."""

_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
# A whole number, not part of a decimal or a version ("between 1 and 200." holds 1 and 200).
_NUMBER = re.compile(r"(?<!\d)(?<!\d\.)\d{1,6}(?!\d|\.\d)")
_UNSUPPORTED_WORDS = re.compile(
    r"not\s+supported|unsupported|not\s+implemented|unknown\s+resource|"
    r"invalid\s+resource\s+type|no\s+such\s+resource|does\s+not\s+support|"
    r"not\s+a\s+(?:known|valid|supported)\s+resource",
    re.IGNORECASE,
)
_PARAMETER_STATUSES = (400, 422)
_UNSUPPORTED_STATUSES = (400, 404, 405, 422, 501)
# ``_sort`` values the local sort can stand in for: a clinical date, newest first with "-".
_DATE_SORTS = frozenset({"date", "effective", "authoredon", "issued"})

# Resource types named in metric labels; anything else is "other", so labels stay few.
_LABELLED_TYPES = frozenset(
    {
        "Patient",
        "Observation",
        "MedicationRequest",
        "MedicationStatement",
        "Condition",
        "Medication",
    }
)

Unsupported = Literal["unsupported"]
UNSUPPORTED: Unsupported = "unsupported"


@dataclass(frozen=True, slots=True)
class Target:
    """What a fallback URL relative to the FHIR server asks for."""

    resource_type: str
    search: bool
    """A type search (``Observation?...``); False for a read (``Patient/123``)."""


def resource_label(resource_type: str) -> str:
    """A resource type as a metric label value: one of a known few, or "other"."""
    return resource_type if resource_type in _LABELLED_TYPES else "other"


def target_of(relative: str) -> Target | None:
    """``Observation?patient=1`` → a search of Observation; ``Patient/1`` → a read."""
    segments = relative.split("?", 1)[0].strip("/").split("/")
    if not _TYPE.fullmatch(segments[0]):
        return None
    return Target(segments[0], search=len(segments) == 1)


# --- the query of a URL, edited as written (values stay encoded as they were) -----------------


def _split(url: str) -> tuple[str, list[str]]:
    base, _, query = url.partition("?")
    return base, [part for part in query.split("&") if part]


def query_value(url: str, name: str) -> str | None:
    """The (first) value of parameter ``name`` as written in ``url``; None when absent."""
    for part in _split(url)[1]:
        key, _, value = part.partition("=")
        if key == name:
            return value
    return None


def with_param(url: str, name: str, value: str | None) -> str:
    """``url`` with ``name`` set to ``value`` (replaced in place, or added), or removed (None)."""
    base, parts = _split(url)
    kept: list[str] = []
    placed = False
    for part in parts:
        if part.partition("=")[0] != name:
            kept.append(part)
        elif value is not None and not placed:
            kept.append(f"{name}={value}")
            placed = True
    if value is not None and not placed:
        kept.append(f"{name}={value}")
    return f"{base}?{'&'.join(kept)}" if kept else base


def _parameters(url: str) -> list[str]:
    return [part.partition("=")[0] for part in _split(url)[1]]


# --- what a rejection says ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rejection:
    """A search the server refused for its paging or sorting: how to ask again."""

    page_size: int | None = None
    """Retry with this ``_count``; None: the page size was not what was refused."""
    drop_sort: bool = False
    """Retry without ``_sort``."""


@functools.lru_cache(maxsize=256)
def _words(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(word) for word in words)
    return re.compile(rf"(?<![A-Za-z0-9_])(?:{alternatives})(?![A-Za-z0-9_])", re.IGNORECASE)


def _mentions(text: str, *words: str) -> bool:
    """Whether ``text`` has one of ``words`` as a whole word, in any case."""
    return _words(words).search(text) is not None


# Compiled now rather than in the first call that meets a strict server.
_words(("_count", "count"))
_words(("_sort", "sort", "sorting"))


def smaller_page(sent: str, texts: Iterable[str]) -> int | None:
    """The ``_count`` to retry with after ``sent`` was refused: the largest number below it the
    server's texts state (its maximum, "between 1 and 200"), else ``DEFAULT_SMALLER_PAGE`` or
    half; None when there is nothing smaller to try."""
    try:
        current = int(sent)
    except ValueError:
        return DEFAULT_SMALLER_PAGE
    stated = [
        number
        for text in texts
        if _mentions(text, "_count", "count")
        for number in map(int, _NUMBER.findall(text))
        if 1 <= number < current
    ]
    if stated:
        return max(stated)
    smaller = min(DEFAULT_SMALLER_PAGE, current // 2)
    return smaller if smaller >= 1 else None


def _says_unsupported(codes: Sequence[str], text: str, resource_type: str) -> bool:
    if "not-supported" in codes:
        return True
    return _mentions(text, resource_type) and _UNSUPPORTED_WORDS.search(text) is not None


def _search_rejection(
    status: int, codes: Sequence[str], texts: Sequence[str], url: str, target: Target
) -> Rejection | Unsupported | None:
    text = " ".join(texts)
    count, sort = query_value(url, "_count"), query_value(url, "_sort")
    if status in _PARAMETER_STATUSES:
        names_count = count is not None and _mentions(text, "_count", "count")
        names_sort = sort is not None and _mentions(text, "_sort", "sort", "sorting")
        if names_count or names_sort:
            page_size = smaller_page(count, texts) if names_count and count is not None else None
            if page_size is None and not names_sort:
                return None  # nothing smaller to ask for
            return Rejection(page_size, names_sort)
    others = [name for name in _parameters(url) if name not in ("_count", "_sort")]
    if any(_mentions(text, name) for name in others):
        return None  # the server has the type but not this question
    if status == 404 or (
        status in _UNSUPPORTED_STATUSES and _says_unsupported(codes, text, target.resource_type)
    ):
        return UNSUPPORTED
    return None


def classify(
    status: int | None,
    codes: Sequence[str],
    texts: Sequence[str],
    url: str,
    target: Target,
) -> Rejection | Unsupported | None:
    """What a failed request to ``url`` says: a refused page size or sort (retry), a resource
    type the server does not have, or neither (None: a plain failure)."""
    if status is None:
        return None
    if target.search:
        return _search_rejection(status, codes, texts, url, target)
    if status in _UNSUPPORTED_STATUSES and _says_unsupported(
        codes, " ".join(texts), target.resource_type
    ):
        return UNSUPPORTED
    return None


# --- the local sort -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalSort:
    """A ``_sort`` the server was not asked for, done on the fetched resources."""

    newest_first: bool


def local_sort(sort: str | None) -> LocalSort | None:
    """The local stand-in for ``_sort=<sort>``: a clinical date, in its direction."""
    if not sort:
        return None
    first = sort.split(",", 1)[0].split("%2C", 1)[0]
    descending = first.startswith("-")
    return LocalSort(descending) if first.lstrip("-").lower() in _DATE_SORTS else None


def _instant(value: Any) -> float | None:
    if not isinstance(value, str) or len(value) < 4:
        return None
    try:
        if len(value) < 10:  # "2026" or "2026-11": the start of the period
            year, _, month = value.partition("-")
            parsed = datetime(int(year), int(month or 1), 1, tzinfo=UTC)
        else:
            parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def clinical_time(resource: Resource) -> float | None:
    """When a result was taken or an order written: effective[x], issued, authoredOn."""
    period = resource.effectivePeriod
    for value in (
        resource.effectiveDateTime,
        resource.effectiveInstant,
        period.start if isinstance(period, Period) else None,
        resource.issued,
        resource.authoredOn,
    ):
        when = _instant(value)
        if when is not None:
            return when
    return None


def sort_resources(resources: list[Resource], sort: LocalSort) -> None:
    """Sort in place by clinical date; resources without one last, in the server's order."""
    sign = -1.0 if sort.newest_first else 1.0

    def key(resource: Resource) -> tuple[bool, float]:
        when = clinical_time(resource)
        return (when is None, 0.0 if when is None else sign * when)

    resources.sort(key=key)
