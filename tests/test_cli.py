"""The command line: evaluate matches the HTTP endpoint, the trace explains, check-config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson

from cds_service.facts import PREDICATES
from cds_service.rules import TOPICS
from cds_service.scenarios import load_scenario

from .support import REPO, hook_request, magnesium, make_client

SCENARIO = REPO / "fixtures" / "scenarios" / "ckd4-critical-mg-mgdl.json"


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cds_service.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def _topics(body: dict[str, object]) -> list[tuple[str, str, str]]:
    return [
        (c["source"]["topic"]["code"], c["indicator"], c["summary"])  # type: ignore[index]
        for c in body["cards"]  # type: ignore[attr-defined]
    ]


def test_evaluate_prints_the_cards_the_http_endpoint_returns(tmp_path: Path) -> None:
    request = hook_request(observations=[magnesium(1.1, day="2026-11-19")])
    path = tmp_path / "request.json"
    path.write_bytes(orjson.dumps(request))
    result = _cli("evaluate", str(path), "--now", "2026-11-20T12:00:00Z")
    assert result.returncode == 0, result.stderr
    offline = json.loads(result.stdout)
    online = make_client().post("/cds-services/mg-patient-view", json=request).json()
    assert _topics(offline) == _topics(online)
    assert [c["detail"] for c in offline["cards"]] == [c["detail"] for c in online["cards"]]
    assert _topics(offline)[0][:2] == ("hypomagnesemia", "critical")


def test_evaluate_trace_shows_facts_and_every_rule(tmp_path: Path) -> None:
    odd_unit = magnesium(3.0, unit="mg/100mL", obs_id="mg-odd")
    request = hook_request(observations=[magnesium(1.4, day="2026-11-19"), odd_unit])
    path = tmp_path / "request.json"
    path.write_bytes(orjson.dumps(request))
    result = _cli("evaluate", str(path), "--trace", "--now", "2026-11-20T12:00:00Z")
    assert result.returncode == 0, result.stderr
    trace = json.loads(result.stdout)["trace"]
    (current,) = [trace["current"]["magnesium"]]
    # The reported value as the lab wrote it (a string keeps its precision: "1.40" stays so).
    assert current["reported"] == {"value": "1.4", "unit": "mg/dL", "comparator": None}
    assert current["canonical"] == {"value": 0.576, "unit": "mmol/L"}
    assert trace["skipped_results"] == [
        {
            "analyte": "magnesium",
            "code": "19123-9",
            "reason": "unrecognised unit",
            "unit": "mg/100mL",
            "effective": "2026-11-19T08:00:00+00:00",
            "unreadable": True,
            "id": "mg-odd",
        }
    ]
    # The clinical context the rules read, with where each part came from.
    context = trace["context"]
    assert context["age_years"] == 58
    assert context["age_source"] == "Patient.birthDate at the time of the request"
    assert context["weight"] is None
    assert context["kidney_function"] is None
    assert context["kidney_failure_source"] is None
    assert context["conditions"] == []
    assert context["cni"] is None
    assert context["lab_orders"] == []
    assert set(context["predicates"]) == set(PREDICATES)
    assert not any(context["predicates"].values())
    rules = {r["topic"]: r for r in trace["rules"]}
    assert list(rules) == [topic.spec.code for topic in TOPICS]
    assert len(rules) == 11
    assert rules["hypomagnesemia"]["fired"] and rules["hypomagnesemia"]["indicator"] == "warning"
    assert rules["hypermagnesemia"]["why"] == "current Mg 1.4 mg/dL is not above 3.0 mg/dL"
    assert rules["mg-monitoring-gap"]["why"] == "no CNI active"


def test_evaluate_a_scenario_file_shifts_it_to_today() -> None:
    scenario = load_scenario(SCENARIO, shift=False)
    result = _cli("evaluate", str(SCENARIO))
    assert result.returncode == 0, result.stderr
    topics = [(t, i) for t, i, _ in _topics(json.loads(result.stdout))]
    assert topics == [(e.topic, e.indicator) for e in scenario.expected]


def test_evaluate_reports_a_bad_request_as_operation_outcome(tmp_path: Path) -> None:
    path = tmp_path / "request.json"
    path.write_text('{"hook": "patient-view", "context": {}}')
    result = _cli("evaluate", str(path))
    assert result.returncode == 1
    assert json.loads(result.stdout)["resourceType"] == "OperationOutcome"


def test_check_config_passes_on_the_shipped_cards() -> None:
    result = _cli("check-config")
    assert result.returncode == 0, result.stderr
    assert "OK (11 topics, 10 analytes)" in result.stdout
