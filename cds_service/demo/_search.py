"""FHIR R4 search semantics for the demo test double: tokens, references, dates, sorting.

Only what the demo needs, written for clarity rather than speed: the index holds a few hundred
resources. Dates follow the FHIR range rules (a value is the range its precision implies).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

Resource = dict[str, Any]

_DATE = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?P<fraction>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


class SearchError(ValueError):
    """A search the client got wrong: answered with a 400 OperationOutcome."""


@dataclass(frozen=True, slots=True)
class DateRange:
    """The half-open interval ``[low, high)`` a FHIR date or dateTime stands for."""

    low: datetime
    high: datetime


_FAR_PAST = datetime(1, 1, 1, tzinfo=UTC)
_FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.month - 1 + months
    return moment.replace(year=moment.year + index // 12, month=index % 12 + 1)


def parse_date(value: str) -> DateRange:
    """A FHIR date/dateTime/instant as a range; a value without a zone is read as UTC."""
    match = _DATE.match(value.strip())
    if match is None:
        raise SearchError(f"'{value}' is not a FHIR date or dateTime")
    parts = match.groupdict()
    try:
        low = datetime(
            int(parts["year"]),
            int(parts["month"] or 1),
            int(parts["day"] or 1),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            int(float(parts["fraction"] or 0) * 1_000_000),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise SearchError(f"'{value}' is not a valid date") from exc
    tz = parts["tz"]
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        low -= sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    if parts["month"] is None:
        high = low.replace(year=low.year + 1)
    elif parts["day"] is None:
        high = _add_months(low, 1)
    elif parts["hour"] is None:
        high = low + timedelta(days=1)
    elif parts["second"] is None:
        high = low + timedelta(minutes=1)
    elif parts["fraction"] is None:
        high = low + timedelta(seconds=1)
    else:
        high = low + timedelta(milliseconds=1)
    return DateRange(low, high)


def _matches_date(target: DateRange, prefix: str, search: DateRange) -> bool:
    contained = search.low <= target.low and target.high <= search.high
    if prefix == "eq":
        return contained
    if prefix == "ne":
        return not contained
    if prefix == "gt":
        return target.high > search.high
    if prefix == "lt":
        return target.low < search.low
    if prefix == "ge":
        return target.high > search.high or contained
    if prefix == "le":
        return target.low < search.low or contained
    if prefix == "sa":
        return target.low >= search.high
    if prefix == "eb":
        return target.high <= search.low
    return target.low < search.high and target.high > search.low  # ap: they overlap


def date_filter(values: Iterable[str]) -> Callable[[DateRange | None], bool]:
    """One ``date`` parameter (a comma list is OR); a resource without a date never matches."""
    tests: list[tuple[str, DateRange]] = []
    for raw in values:
        # An unencoded "+" in a time zone arrives as a space.
        value = raw.strip().replace(" ", "+")
        prefix = value[:2] if value[:2] in _PREFIXES else "eq"
        if value[:2] in _PREFIXES:
            value = value[2:]
        tests.append((prefix, parse_date(value)))

    def check(target: DateRange | None) -> bool:
        return target is not None and any(_matches_date(target, p, s) for p, s in tests)

    return check


def resource_date(resource: Resource, fields: tuple[str, ...]) -> DateRange | None:
    """The first date the resource has among ``fields`` (``xPeriod`` spans start to end)."""
    for field in fields:
        value = resource.get(field)
        if isinstance(value, str):
            try:
                return parse_date(value)
            except SearchError:
                return None
        if isinstance(value, dict) and field.endswith("Period"):
            start, end = value.get("start"), value.get("end")
            try:
                low = parse_date(start).low if isinstance(start, str) else _FAR_PAST
                high = parse_date(end).high if isinstance(end, str) else _FAR_FUTURE
            except SearchError:
                return None
            return DateRange(low, high)
    return None


def _codings(concept: Any) -> list[dict[str, Any]]:
    if isinstance(concept, list):  # e.g. Observation.category: a list of CodeableConcepts
        return [coding for item in concept for coding in _codings(item)]
    if not isinstance(concept, dict):
        return []
    codings = concept.get("coding")
    return [c for c in codings if isinstance(c, dict)] if isinstance(codings, list) else []


def token_filter(values: Iterable[str]) -> Callable[[list[dict[str, Any]]], bool]:
    """``system|code``, ``|code`` (no system), ``system|`` (any code) or a bare ``code``."""
    tests: list[tuple[str | None, str | None]] = []
    for value in values:
        if "|" in value:
            system, code = value.split("|", 1)
            tests.append((system, code or None))
        else:
            tests.append((None, value))

    def one(coding: dict[str, Any], system: str | None, code: str | None) -> bool:
        if system is not None and (coding.get("system") or "") != system:
            return False
        return code is None or coding.get("code") == code

    def check(codings: list[dict[str, Any]]) -> bool:
        return any(one(c, s, k) for c in codings for s, k in tests)

    return check


def concept_codings(resource: Resource, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for field in fields:
        found.extend(_codings(resource.get(field)))
    return found


def reference_id(value: str, resource_type: str) -> str | None:
    """``x``, ``Type/x`` or ``http://base/Type/x`` → ``x``; None for another resource type."""
    value = value.strip().rstrip("/")
    if "/" not in value:
        return value or None
    parts = value.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) < 2 or parts[-2] != resource_type:
        return None
    return parts[-1] or None


def split_list(value: str) -> list[str]:
    """A FHIR comma list; ``\\,`` is a literal comma."""
    items = re.split(r"(?<!\\),", value)
    return [item.replace("\\,", ",") for item in items if item]
