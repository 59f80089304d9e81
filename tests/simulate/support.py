"""Populations for the simulate tests: fixture scenarios as Bulk Data NDJSON, and small clinics."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from cds_service.scenarios import Scenario
from cds_service.simulate import HOOKS, SimulateOptions, simulate

from ..support import CARDS

ANCHOR = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HASH_KEY = "simulate-test-key"
ANCHOR_TEXT = "2026-11-20T12:00:00Z"


def _resources(bundle: Any) -> list[dict[str, Any]]:
    if not isinstance(bundle, dict):
        return []
    if bundle.get("resourceType") != "Bundle":
        return [bundle]
    return [e["resource"] for e in bundle.get("entry") or [] if isinstance(e.get("resource"), dict)]


def scenario_resources(scenario: Scenario) -> list[dict[str, Any]]:
    """What the EHR's export holds for a scenario's patient.

    The prefetch resources as they are; the draft orders as the orders they became once signed
    (``active``, placed at the moment of the scenario's call: ``authoredOn`` is the anchor), so
    that ``simulate`` replays them as drafts at that moment. A resource without a subject gets
    the patient's.
    """
    request = scenario.request
    patient_id = request["context"]["patientId"]
    found: list[dict[str, Any]] = []
    for value in request["prefetch"].values():
        found.extend(_resources(value))
    drafts = _resources(request["context"].get("draftOrders"))
    for draft in drafts:
        placed = dict(draft)
        placed["status"] = "active"
        placed["authoredOn"] = scenario.now.isoformat().replace("+00:00", "Z")
        found.append(placed)
    for resource in found:
        if resource["resourceType"] not in ("Patient", "Medication") and "subject" not in resource:
            resource["subject"] = {"reference": f"Patient/{patient_id}"}
    return found


def write_ndjson(
    out: Path, resources: Iterable[dict[str, Any]], *, compress: bool = False
) -> dict[str, int]:
    """One file per resource type, in the order given; returns the lines written per type."""
    out.mkdir(parents=True, exist_ok=True)
    lines: dict[str, list[bytes]] = {}
    for resource in resources:
        lines.setdefault(resource["resourceType"], []).append(orjson.dumps(resource))
    for kind, items in lines.items():
        data = b"\n".join(items) + b"\n"
        if compress:
            (out / f"{kind}.ndjson.gz").write_bytes(gzip.compress(data))
        else:
            (out / f"{kind}.ndjson").write_bytes(data)
    return {kind: len(items) for kind, items in lines.items()}


def run(
    population: Path,
    out: Path,
    *,
    at: datetime = ANCHOR,
    since: datetime | None = None,
    hooks: Sequence[str] = HOOKS,
    workers: int = 1,
    cards: Path = CARDS,
    compare: Path | None = None,
    detail: bool = True,
) -> dict[str, Any]:
    return simulate(
        SimulateOptions(
            population=population,
            out=out,
            at=at,
            since=since or at - timedelta(days=365),
            cards=cards,
            hooks=tuple(hooks),
            compare=compare,
            workers=workers,
            with_detail=detail,
            hash_key=HASH_KEY,
        )
    )


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
