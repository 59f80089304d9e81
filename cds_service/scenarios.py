"""Fixture scenarios: a CDS Hooks request with its expected cards, dated relative to an anchor.

Scenario files in ``fixtures/scenarios/`` are written as of their ``anchor`` date-time. Loading one
for the demo or the CLI shifts every clinical date by whole days so the scenario reads the same
today; tests load them unshifted and evaluate as of the anchor.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

# The repository's fixtures/ in a checkout; an installed package (the Docker image) names it.
FIXTURES_DIR = Path(
    os.environ.get("CDS_FIXTURES_DIR") or Path(__file__).resolve().parent.parent / "fixtures"
)
SCENARIOS_DIR = FIXTURES_DIR / "scenarios"

# Clinical timestamps that move with the scenario; birthDate stays so ages stay true.
_SHIFTED_KEYS = frozenset(
    {
        "effectiveDateTime",
        "effectiveInstant",
        "issued",
        "authoredOn",
        "start",
        "end",
        "occurrenceDateTime",
        "dateAsserted",
        "recorded",
        "validityPeriod",
    }
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class ExpectedCard:
    topic: str
    indicator: str
    summary_contains: tuple[str, ...] = ()
    detail_contains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    description: str
    now: datetime
    request: dict[str, Any]
    expected: tuple[ExpectedCard, ...]
    demo: bool


def is_scenario(payload: Any) -> bool:
    return isinstance(payload, dict) and "request" in payload and "anchor" in payload


def _shift_value(value: str, days: int) -> str:
    if len(value) == 10:
        return (date.fromisoformat(value) + timedelta(days=days)).isoformat()
    return (date.fromisoformat(value[:10]) + timedelta(days=days)).isoformat() + value[10:]


def shift_dates(node: Any, days: int) -> Any:
    """A copy of a JSON tree with clinical dates moved by ``days``."""
    if isinstance(node, dict):
        return {
            key: (
                _shift_value(value, days)
                if key in _SHIFTED_KEYS and isinstance(value, str) and _DATE.match(value)
                else shift_dates(value, days)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [shift_dates(item, days) for item in node]
    return node


def _expected(items: Any) -> tuple[ExpectedCard, ...]:
    return tuple(
        ExpectedCard(
            topic=item["topic"],
            indicator=item["indicator"],
            summary_contains=tuple(item.get("summary_contains", ())),
            detail_contains=tuple(item.get("detail_contains", ())),
        )
        for item in items
    )


def load_scenario(path: Path, *, now: datetime | None = None, shift: bool = True) -> Scenario:
    """Load a scenario; shifted to ``now`` (default: today) unless ``shift`` is False."""
    raw: Mapping[str, Any] = orjson.loads(path.read_bytes())
    anchor = datetime.fromisoformat(str(raw["anchor"]).replace("Z", "+00:00"))
    request = raw["request"]
    when = anchor
    if shift:
        target = now or datetime.now(UTC)
        days = (target.date() - anchor.date()).days
        request = shift_dates(request, days)
        when = anchor + timedelta(days=days)
    return Scenario(
        name=path.stem,
        title=str(raw.get("title", path.stem)),
        description=str(raw.get("description", "")),
        now=when,
        request=request,
        expected=_expected(raw.get("expected", [])),
        demo=bool(raw.get("demo", True)),
    )


def all_scenarios(directory: Path = SCENARIOS_DIR, **kwargs: Any) -> list[Scenario]:
    return [load_scenario(path, **kwargs) for path in sorted(directory.glob("*.json"))]
