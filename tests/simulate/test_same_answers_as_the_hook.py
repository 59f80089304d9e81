"""``simulate`` answers each patient exactly as the HTTP hook does, card for card.

Every fixture scenario becomes a patient of one Bulk Data export (its prefetch resources, and its
draft orders as the orders they became, placed at the scenario's moment). ``simulate`` runs the
export as of that moment; each scenario's own call is then looked up in ``cards.ndjson`` (by the
keyed patient hash, the hook, and for order hooks the orders it was about) and compared with the
answer the HTTP endpoint gives for the scenario's request: the same topics and indicators, in
the same order, with the same summary and detail.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from cds_service._logging import patient_hash
from cds_service.scenarios import Scenario, load_scenario

from ..support import make_client, make_service
from ..test_scenarios import SCENARIO_FILES, SERVICE_FOR_HOOK
from .support import ANCHOR, HASH_KEY, read_ndjson, run, scenario_resources, write_ndjson

Card = tuple[str, str, str, str]


def _scenarios() -> list[Scenario]:
    return [load_scenario(path, shift=False) for path in SCENARIO_FILES]


Simulated = tuple[list[dict[str, Any]], dict[str, Any]]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Simulated:
    """One export of every scenario's patient, simulated once as of the scenarios' moment."""
    tmp = tmp_path_factory.mktemp("scenarios")
    resources = [r for s in _scenarios() for r in scenario_resources(s)]
    write_ndjson(tmp / "population", resources)
    # Only the scenarios' own orders are replayed: they are the only ones placed at the anchor.
    summary = run(tmp / "population", tmp / "out", at=ANCHOR, since=ANCHOR)
    return read_ndjson(tmp / "out" / "cards.ndjson"), summary


def _over_http(scenario: Scenario) -> list[Card]:
    client = make_client(make_service(clock=lambda: scenario.now))
    service_id = SERVICE_FOR_HOOK[scenario.request["hook"]]
    response = client.post(f"/cds-services/{service_id}", json=scenario.request)
    assert response.status_code == 200, response.text
    return [
        (c["source"]["topic"]["code"], c["indicator"], c["summary"], c["detail"])
        for c in response.json()["cards"]
    ]


def _orders(scenario: Scenario) -> list[str] | None:
    """The orders a scenario's call is about, as simulate names them (keyed hashes)."""
    context: Mapping[str, Any] = scenario.request["context"]
    hook = scenario.request["hook"]
    if hook == "patient-view":
        return None
    if hook == "order-select":
        references = list(context["selections"])
    else:
        references = [
            f"MedicationRequest/{e['resource']['id']}"
            for e in context["draftOrders"].get("entry", [])
            if e["resource"]["resourceType"] == "MedicationRequest"
        ]
    return [patient_hash(HASH_KEY, reference) for reference in references]


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[p.stem for p in SCENARIO_FILES])
def test_simulate_gives_each_scenario_the_cards_the_hook_gives(
    path: Path, simulated: Simulated
) -> None:
    cards, _ = simulated
    scenario = load_scenario(path, shift=False)
    patient = patient_hash(HASH_KEY, scenario.request["context"]["patientId"])
    hook = scenario.request["hook"]
    orders = _orders(scenario)
    mine = [
        (c["topic"], c["indicator"], c["summary"], c["detail"])
        for c in cards
        if c["patient"] == patient
        and c["hook"] == hook
        and c["at"] == "2026-11-20T12:00:00Z"
        and c.get("orders") == orders
    ]
    assert mine == _over_http(scenario)


def test_every_scenario_call_was_made(simulated: Simulated) -> None:
    """No scenario passes by being skipped (an empty answer matches no cards): every patient got
    its patient-view, every draft order its order-select, every session its order-sign."""
    _, summary = simulated
    scenarios = _scenarios()
    ordering = [s for s in scenarios if s.request["hook"] != "patient-view"]
    drafts = sum(
        1
        for s in ordering
        for e in s.request["context"]["draftOrders"].get("entry", [])
        if e["resource"]["resourceType"] == "MedicationRequest"
    )
    assert summary["population"]["patients"] == len(scenarios)
    assert summary["calls"] == {
        "patient-view": len(scenarios),
        "order-select": drafts,
        "order-sign": len(ordering),
    }
    assert summary["orders"] == drafts
    assert summary["errors"] == {}
    assert summary["population"]["malformed_lines"] == 0
