"""What a CDS committee reads from the audit: one row per card shown, and rates per content version.

Nothing here is identifying in clear: patients and users appear as keyed hashes, a free-text
override comment only as "there was one".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from ._engine import Database
from ._schema import card_audit, feedback

NOT_RECORDED = "(not recorded)"
EXPORT_FIELDS = (
    "time",
    "card",
    "service",
    "hook",
    "topic",
    "indicator",
    "content_version",
    "content_fingerprint",
    "outcome",
    "override_reason",
    "comment",
    "patient_hash",
    "user_hash",
    "iss",
    "tenant",
)
_OUTCOMES = ("accepted", "overridden")
_BATCH = 1000


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _decisions(connection: Connection, since: datetime | None) -> dict[str, tuple[Any, ...]]:
    """Per card: the outcome, override reason and comment presence of its latest feedback."""
    query = (
        select(
            feedback.c.card_uuid,
            feedback.c.outcome,
            feedback.c.override_code,
            feedback.c.user_comment.is_not(None),
        )
        .join(card_audit, card_audit.c.card_uuid == feedback.c.card_uuid)
        .order_by(feedback.c.card_uuid, feedback.c.outcome_timestamp, feedback.c.id)
    )
    if since is not None:
        query = query.where(card_audit.c.created_at >= since)
    # Ordered by time within each card, so the last row seen is the card's latest decision.
    return {row[0]: tuple(row[1:]) for row in connection.execute(query)}


def iter_export(database: Database, since: datetime | None) -> Iterator[dict[str, Any]]:
    """One row per card shown (oldest first), with its latest feedback, if any."""
    with database.read() as connection:
        decisions = _decisions(connection, since)
        query = select(
            card_audit.c.created_at,
            card_audit.c.card_uuid,
            card_audit.c.service_id,
            card_audit.c.hook,
            card_audit.c.topic,
            card_audit.c.indicator,
            card_audit.c.content_version,
            card_audit.c.content_fingerprint,
            card_audit.c.patient_hash,
            card_audit.c.user_hash,
            card_audit.c.iss,
            card_audit.c.tenant,
        ).order_by(card_audit.c.created_at, card_audit.c.card_uuid)
        if since is not None:
            query = query.where(card_audit.c.created_at >= since)
        result = connection.execution_options(yield_per=_BATCH).execute(query)
        for row in result:
            outcome, reason, comment = decisions.get(row.card_uuid, (None, None, False))
            yield {
                "time": _iso(row.created_at),
                "card": row.card_uuid,
                "service": row.service_id,
                "hook": row.hook,
                "topic": row.topic,
                "indicator": row.indicator,
                "content_version": row.content_version,
                "content_fingerprint": row.content_fingerprint,
                "outcome": outcome,
                "override_reason": reason,
                "comment": bool(comment),
                "patient_hash": row.patient_hash,
                "user_hash": row.user_hash,
                "iss": row.iss,
                "tenant": row.tenant,
            }


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The export as CSV text, a header line first; cells that a spreadsheet would run as a
    formula are prefixed with an apostrophe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(EXPORT_FIELDS)
    for row in rows:
        writer.writerow([_csv_cell(row[name]) for name in EXPORT_FIELDS])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# -- acceptance and override rates per content version -----------------------------------------


def _version(value: str | None) -> str:
    return value if value is not None else NOT_RECORDED


def _counts() -> dict[str, Any]:
    return {"shown": 0, "accepted": 0, "overridden": 0}


def _rates(counts: dict[str, Any]) -> None:
    shown = counts["shown"]
    for outcome, rate in (("accepted", "acceptance_rate"), ("overridden", "override_rate")):
        counts[rate] = round(counts[outcome] / shown, 4) if shown else None


def build_by_version(database: Database, since: datetime | None) -> dict[str, Any]:
    """``{"versions": {version: {fingerprints, first_shown, last_shown, shown, accepted,
    overridden, acceptance_rate, override_rate, topics: {code: counts}}}}``, oldest first.

    Cards count under the content version that rendered them; a card counts once per outcome
    however many feedback items name it. ``since`` filters on when the card was shown.
    """
    version = card_audit.c.content_version
    shown_query = select(
        version,
        card_audit.c.content_fingerprint,
        card_audit.c.topic,
        func.count(),
        func.min(card_audit.c.created_at),
        func.max(card_audit.c.created_at),
    ).group_by(version, card_audit.c.content_fingerprint, card_audit.c.topic)
    outcome_query = (
        select(
            version,
            card_audit.c.topic,
            feedback.c.outcome,
            func.count(feedback.c.card_uuid.distinct()),
        )
        .join(feedback, feedback.c.card_uuid == card_audit.c.card_uuid)
        .where(feedback.c.outcome.in_(_OUTCOMES))
        .group_by(version, card_audit.c.topic, feedback.c.outcome)
    )
    if since is not None:
        shown_query = shown_query.where(card_audit.c.created_at >= since)
        outcome_query = outcome_query.where(card_audit.c.created_at >= since)

    versions: dict[str, dict[str, Any]] = {}

    def entry(name: str) -> dict[str, Any]:
        empty = {"fingerprints": [], "first_shown": None, "last_shown": None, **_counts()}
        return versions.setdefault(name, {**empty, "topics": {}})

    with database.read() as connection:
        for name, fingerprint, topic, count, first, last in connection.execute(shown_query):
            item = entry(_version(name))
            item["shown"] += count
            item["topics"].setdefault(topic, _counts())["shown"] += count
            if fingerprint is not None and fingerprint not in item["fingerprints"]:
                item["fingerprints"].append(fingerprint)
            item["first_shown"] = min(filter(None, (item["first_shown"], first)))
            item["last_shown"] = max(filter(None, (item["last_shown"], last)))
        for name, topic, outcome, count in connection.execute(outcome_query):
            item = entry(_version(name))
            item[outcome] += count
            item["topics"].setdefault(topic, _counts())[outcome] += count

    ordered = sorted(versions.items(), key=lambda kv: kv[1]["first_shown"] or datetime.max)
    result: dict[str, Any] = {}
    for name, item in ordered:
        _rates(item)
        for counts in item["topics"].values():
            _rates(counts)
        item["topics"] = dict(sorted(item["topics"].items()))
        item["fingerprints"].sort()
        for key in ("first_shown", "last_shown"):
            item[key] = _iso(item[key]) if item[key] else None
        result[name] = item
    return {"versions": result}


def _percent(rate: float | None) -> str:
    return f"{100 * rate:.1f}%" if rate is not None else "-"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]

    def render(line: list[str]) -> str:
        cells = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [render(header), render(["-" * w for w in widths]), *map(render, rows)]


def format_by_version_text(report: dict[str, Any]) -> str:
    """Plain-text tables of :func:`build_by_version`: per version, then per topic and version."""
    versions: dict[str, Any] = report.get("versions", {})
    if not versions:
        return "No cards recorded."
    counts = ["shown", "accepted", "overridden", "accepted %", "overridden %"]

    def numbers(c: dict[str, Any]) -> list[str]:
        return [
            str(c["shown"]),
            str(c["accepted"]),
            str(c["overridden"]),
            _percent(c["acceptance_rate"]),
            _percent(c["override_rate"]),
        ]

    overall = [
        [name, ", ".join(v["fingerprints"]) or "-", *numbers(v)] for name, v in versions.items()
    ]
    lines = _table(["content version", "fingerprints", *counts], overall)
    per_topic = [
        [topic, name, *numbers(c)]
        for name, v in versions.items()
        for topic, c in v["topics"].items()
    ]
    per_topic.sort(key=lambda row: row[0])
    return "\n".join([*lines, "", *_table(["topic", "content version", *counts], per_topic)])
