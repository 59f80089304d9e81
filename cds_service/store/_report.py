"""``cds-service report``: per-topic and per-suggestion counts, as a dict and as a table."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, func, select

from ._engine import Database
from ._schema import card_audit, card_suggestion, feedback, feedback_suggestion

UNKNOWN_TOPIC = "(unknown card)"
_OUTCOMES = ("accepted", "overridden")


def _feedback_topic() -> ColumnElement[str]:
    # The audit row wins (it may have arrived after the feedback); the snapshot outlives purges.
    return func.coalesce(card_audit.c.topic, feedback.c.topic, UNKNOWN_TOPIC)


def _feedback_since(query: Select[Any], since: datetime | None) -> Select[Any]:
    query = query.select_from(feedback).outerjoin(
        card_audit, card_audit.c.card_uuid == feedback.c.card_uuid
    )
    return query if since is None else query.where(feedback.c.received_at >= since)


def _shown(connection: Connection, since: datetime | None) -> Iterable[Any]:
    """Per topic and silent flag: the cards recorded (sent, or evaluated in silent mode)."""
    query = select(card_audit.c.topic, card_audit.c.silent, func.count()).group_by(
        card_audit.c.topic, card_audit.c.silent
    )
    if since is not None:
        query = query.where(card_audit.c.created_at >= since)
    return connection.execute(query)


def _outcomes(connection: Connection, since: datetime | None) -> Iterable[Any]:
    topic = _feedback_topic()
    # Distinct cards: a card accepted in two feedback posts is one accepted card.
    query = select(topic, feedback.c.outcome, func.count(feedback.c.card_uuid.distinct()))
    return connection.execute(_feedback_since(query, since).group_by(topic, feedback.c.outcome))


def _reasons(connection: Connection, since: datetime | None) -> Iterable[Any]:
    topic = _feedback_topic()
    query = select(topic, feedback.c.override_code, func.count(feedback.c.card_uuid.distinct()))
    query = _feedback_since(query, since).where(
        feedback.c.outcome == "overridden", feedback.c.override_code.is_not(None)
    )
    return connection.execute(query.group_by(topic, feedback.c.override_code))


def _topics(connection: Connection, since: datetime | None) -> dict[str, dict[str, Any]]:
    topics: dict[str, dict[str, Any]] = {}

    def entry(code: str) -> dict[str, Any]:
        empty: dict[str, Any] = {
            "shown": 0,
            "silent": 0,
            "accepted": 0,
            "overridden": 0,
            "override_reasons": {},
        }
        return topics.setdefault(code, empty)

    for code, silent, count in _shown(connection, since):
        entry(code)["silent" if silent else "shown"] = count
    for code, outcome, count in _outcomes(connection, since):
        if outcome in _OUTCOMES:
            entry(code)[outcome] = count
    for code, reason, count in _reasons(connection, since):
        entry(code)["override_reasons"][reason] = count
    for value in topics.values():
        value["override_reasons"] = dict(sorted(value["override_reasons"].items()))
    return dict(sorted(topics.items()))


def _suggestions_shown(connection: Connection, since: datetime | None) -> Iterable[Any]:
    key = func.coalesce(card_suggestion.c.label, card_suggestion.c.suggestion_uuid)
    query = select(key, func.count()).select_from(card_suggestion)
    if since is not None:
        query = query.join(card_audit, card_audit.c.card_uuid == card_suggestion.c.card_uuid).where(
            card_audit.c.created_at >= since
        )
    return connection.execute(query.group_by(key))


def _suggestions_accepted(connection: Connection, since: datetime | None) -> Iterable[Any]:
    key = func.coalesce(card_suggestion.c.label, feedback_suggestion.c.suggestion_uuid)
    on_card = and_(
        card_suggestion.c.suggestion_uuid == feedback_suggestion.c.suggestion_uuid,
        card_suggestion.c.card_uuid == feedback.c.card_uuid,
    )
    query = (
        select(key, func.count(feedback_suggestion.c.suggestion_uuid.distinct()))
        .select_from(feedback_suggestion)
        .join(feedback, feedback.c.id == feedback_suggestion.c.feedback_id)
        .outerjoin(card_suggestion, on_card)
        .where(feedback.c.outcome == "accepted")
    )
    if since is not None:
        query = query.where(feedback.c.received_at >= since)
    return connection.execute(query.group_by(key))


def _suggestions(connection: Connection, since: datetime | None) -> dict[str, dict[str, Any]]:
    counts: dict[str, dict[str, Any]] = {}
    for key, count in _suggestions_shown(connection, since):
        counts.setdefault(key, {"shown": 0, "accepted": 0})["shown"] = count
    for key, count in _suggestions_accepted(connection, since):
        counts.setdefault(key, {"shown": 0, "accepted": 0})["accepted"] = count
    for value in counts.values():
        shown, accepted = value["shown"], value["accepted"]
        value["acceptance_rate"] = round(accepted / shown, 4) if shown else None
    return dict(sorted(counts.items()))


def build_report(database: Database, since: datetime | None) -> dict[str, Any]:
    with database.read() as connection:
        return {
            "topics": _topics(connection, since),
            "suggestions": _suggestions(connection, since),
        }


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _table(header: list[str], rows: list[list[str]], *, text_last: bool) -> list[str]:
    """The first column (and the last, if ``text_last``) is text; the others are numbers."""
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    text_columns = {0, len(header) - 1} if text_last else {0}

    def render(line: list[str]) -> str:
        cells = [
            cell.ljust(width) if i in text_columns else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [render(header), render(["-" * width for width in widths]), *map(render, rows)]


def _topic_rows(topics: dict[str, Any]) -> list[list[str]]:
    rows = []
    for code, counts in topics.items():
        reasons = ", ".join(f"{r}={n}" for r, n in counts["override_reasons"].items())
        shown, accepted, overridden = counts["shown"], counts["accepted"], counts["overridden"]
        silent = str(counts.get("silent", 0))
        rows.append(
            [
                code,
                str(shown),
                silent,
                str(accepted),
                str(overridden),
                _percent(accepted, shown),
                reasons,
            ]
        )
    return rows


def _suggestion_rows(suggestions: dict[str, Any]) -> list[list[str]]:
    return [
        [key, str(c["shown"]), str(c["accepted"]), _percent(c["accepted"], c["shown"])]
        for key, c in suggestions.items()
    ]


def format_report_text(report: dict[str, Any]) -> str:
    """A plain-text table of a :func:`build_report` result, for ``cds-service report``."""
    topics: dict[str, Any] = report.get("topics", {})
    if not topics:
        return "No cards or feedback recorded."
    header = [
        "topic",
        "shown",
        "silent",
        "accepted",
        "overridden",
        "accepted %",
        "override reasons",
    ]
    lines = _table(header, _topic_rows(topics), text_last=True)
    suggestions: dict[str, Any] = report.get("suggestions", {})
    if suggestions:
        header = ["suggestion", "shown", "accepted", "accepted %"]
        lines += ["", *_table(header, _suggestion_rows(suggestions), text_last=False)]
    return "\n".join(lines)
