"""``cds-service simulate``: inputs as exports come (gzip, some files, bad lines, empty
patients), the outputs a committee reads, workers, and the chart as it was at each order."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from cds_service._logging import patient_hash
from cds_service.cli import main
from cds_service.simulate._progress import ProgressBar
from fixtures.population.generate import generate

from ..support import CARDS, REPO
from .support import ANCHOR, HASH_KEY, read_ndjson, run, write_ndjson

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clinic")
    generate(out, patients=80, seed=3, end=ANCHOR)
    return out


@pytest.fixture(scope="module")
def baseline(clinic: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("baseline")
    summary = run(clinic, out)
    summary["_cards"] = read_ndjson(out / "cards.ndjson")
    return summary


def _topics(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        topic: (data["cards"], data["patients_affected"])
        for topic, data in summary["topics"].items()
    }


def _cards(cards: list[dict[str, Any]]) -> Counter[tuple[str, ...]]:
    return Counter(
        (c["patient"], c["hook"], c["at"], c["topic"], c["indicator"], c["summary"]) for c in cards
    )


# -- the clinic, end to end ------------------------------------------------------------------------


def test_the_clinic_is_simulated_on_every_hook(baseline: dict[str, Any]) -> None:
    assert baseline["population"]["patients"] == 80
    assert baseline["calls"]["patient-view"] == 80
    assert baseline["orders"] > 80
    assert baseline["calls"]["order-select"] == baseline["orders"]
    assert baseline["calls"]["order-sign"] == baseline["order_sessions"]
    assert baseline["errors"] == {}
    fired = {t for t, d in baseline["topics"].items() if sum(d["cards"].values())}
    assert {"hypomagnesemia", "mg-monitoring-gap", "mg-wasting-comedication"} <= fired
    # Every card in cards.ndjson is counted in summary.json, and the other way round.
    by_hook = Counter((c["hook"], c["topic"]) for c in baseline["_cards"])
    for topic, data in baseline["topics"].items():
        for hook, count in data["cards"].items():
            assert by_hook[(hook, topic)] == count, (hook, topic)


def test_rates_are_per_100_patient_views_and_per_100_orders(baseline: dict[str, Any]) -> None:
    views, orders = baseline["calls"]["patient-view"], baseline["orders"]
    for topic, data in baseline["topics"].items():
        assert data["per_100_patient_views"] == round(
            100 * data["cards"]["patient-view"] / views, 2
        )
        for hook in ("order-select", "order-sign"):
            expected = round(100 * data["cards"][hook] / orders, 2)
            assert data["per_100_orders"][hook] == expected, (topic, hook)
        shown = sum(data["cards"].values())
        interruptive = sum(
            sum(entry["cards"].values())
            for indicator, entry in data["indicators"].items()
            if indicator in ("warning", "critical")
        )
        assert data["share_interruptive"] == (round(interruptive / shown, 4) if shown else None)
    headline = [row["topic"] for row in baseline["headline"]]
    rates = [row["per_100_patient_views"] for row in baseline["headline"]]
    assert rates == sorted(rates, reverse=True) and headline


def test_no_patient_id_leaves_in_the_outputs(clinic: Path, tmp_path: Path) -> None:
    run(clinic, tmp_path)
    for name in ("cards.ndjson", "summary.json", "report.html"):
        text = (tmp_path / name).read_text()
        assert "clinic-0000" not in text, name
    cards = read_ndjson(tmp_path / "cards.ndjson")
    assert {c["patient"] for c in cards} <= {
        patient_hash(HASH_KEY, f"clinic-{i:06d}") for i in range(1, 81)
    }
    assert not list(tmp_path.glob(".simulate-*")), "the work folder is removed"


def test_gzip_input_gives_the_same_answers(
    clinic: Path, baseline: dict[str, Any], tmp_path: Path
) -> None:
    packed = tmp_path / "packed"
    packed.mkdir()
    for path in clinic.glob("*.ndjson"):
        (packed / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes()))
    summary = run(packed, tmp_path / "out")
    assert [f["gzip"] for f in summary["population"]["files"]] == [True] * 6
    assert _topics(summary) == _topics(baseline)
    assert _cards(read_ndjson(tmp_path / "out" / "cards.ndjson")) == _cards(baseline["_cards"])


def test_two_workers_give_the_same_answers_as_one(
    clinic: Path, baseline: dict[str, Any], tmp_path: Path
) -> None:
    summary = run(clinic, tmp_path, workers=2)
    assert summary["simulation"]["workers"] == 2
    assert _topics(summary) == _topics(baseline)
    assert summary["calls"] == baseline["calls"]
    assert _cards(read_ndjson(tmp_path / "cards.ndjson")) == _cards(baseline["_cards"])


def test_a_subset_of_the_files_is_enough(clinic: Path, tmp_path: Path) -> None:
    subset = tmp_path / "subset"
    subset.mkdir()
    shutil.copy(clinic / "Observation.ndjson", subset)  # no Patient, no medications
    summary = run(subset, tmp_path / "out")
    population = summary["population"]
    assert [f["name"] for f in population["files"]] == ["Observation.ndjson"]
    assert population["patients"] > 0
    assert population["patients_without_patient_resource"] == population["patients"]
    assert summary["calls"] == {
        "patient-view": population["patients"],
        "order-select": 0,
        "order-sign": 0,
    }
    assert summary["errors"] == {}
    # Low Mg results alone still give hypomagnesemia cards (not the CNI-specific tiers).
    hypo = summary["topics"]["hypomagnesemia"]["indicators"]
    assert "warning" in hypo and "info" not in hypo


def test_malformed_lines_are_skipped_with_their_line_numbers(
    clinic: Path, baseline: dict[str, Any], tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(clinic, broken)
    path = broken / "Observation.ndjson"
    lines = path.read_bytes().splitlines()
    lines.insert(2, b'{"resourceType": "Observation", "status": "fin')  # line 3: truncated
    lines.insert(5, b"[1, 2, 3]")  # line 6: not an object
    lines.insert(9, b"")  # line 10: blank, simply skipped
    lines.insert(12, b'{"id": "x", "status": "final"}')  # line 13: no resourceType
    lines.append(b"\xff\xfe not json")  # last line
    path.write_bytes(b"\n".join(lines) + b"\n")
    summary = run(broken, tmp_path / "out")
    population = summary["population"]
    assert population["malformed_lines"] == 4
    assert population["first_malformed"] == [
        {"file": "Observation.ndjson", "line": 3, "reason": "not valid JSON"},
        {"file": "Observation.ndjson", "line": 6, "reason": "not a JSON object"},
        {"file": "Observation.ndjson", "line": 13, "reason": "no resourceType"},
        {"file": "Observation.ndjson", "line": len(lines), "reason": "not valid JSON"},
    ]
    assert _topics(summary) == _topics(baseline)
    report = (tmp_path / "out" / "report.html").read_text()
    assert "<code>Observation.ndjson</code> line 6: not a JSON object" in report


def test_line_numbers_are_right_across_chunks_of_a_large_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cds_service.simulate import _partition

    monkeypatch.setattr(_partition, "CHUNK_BYTES", 4096)
    patients = [{"resourceType": "Patient", "id": f"p{i}"} for i in range(400)]
    write_ndjson(tmp_path / "in", patients)
    path = tmp_path / "in" / "Patient.ndjson"
    lines = path.read_bytes().splitlines()
    for number in (150, 390):
        lines[number - 1] = b"{oops"
    path.write_bytes(b"\n".join(lines) + b"\n")
    summary = run(tmp_path / "in", tmp_path / "out", hooks=["patient-view"])
    assert [p["line"] for p in summary["population"]["first_malformed"]] == [150, 390]
    assert summary["population"]["patients"] == 398


def test_a_truncated_gzip_file_uses_what_could_be_read(tmp_path: Path) -> None:
    patients = [{"resourceType": "Patient", "id": f"p{i}"} for i in range(20_000)]
    data = gzip.compress(b"\n".join(orjson.dumps(p) for p in patients) + b"\n")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "Patient.ndjson.gz").write_bytes(data[: len(data) // 2])
    summary = run(tmp_path / "in", tmp_path / "out", hooks=["patient-view"])
    population = summary["population"]
    assert 8_000 < population["patients"] < 10_000  # about half: what was read
    [error] = population["file_errors"]
    assert error["file"] == "Patient.ndjson.gz"
    assert "gzip stream broken" in error["error"]


def test_a_patient_with_no_resources_gets_a_patient_view_and_no_cards(tmp_path: Path) -> None:
    write_ndjson(tmp_path / "in", [{"resourceType": "Patient", "id": "alone"}])
    summary = run(tmp_path / "in", tmp_path / "out")
    assert summary["population"]["patients"] == 1
    assert summary["calls"] == {"patient-view": 1, "order-select": 0, "order-sign": 0}
    assert summary["errors"] == {}
    assert summary["cards"]["total"] == 0
    assert (tmp_path / "out" / "cards.ndjson").read_bytes() == b""


def test_an_empty_folder_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["simulate", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 1
    assert "no .ndjson or .ndjson.gz files" in capsys.readouterr().err
    assert main(["simulate", str(tmp_path / "missing")]) == 1


def test_bad_options_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(tmp_path), "--hooks", "patient-view,order-sigh"]) == 2
    assert "--hooks" in capsys.readouterr().err
    assert main(["simulate", str(tmp_path), "--workers", "0"]) == 2


# -- the chart as it was ---------------------------------------------------------------------------


def _mg(pid: str, oid: str, value: float, when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "19123-9"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when,
        "valueQuantity": {
            "value": value,
            "unit": "mg/dL",
            "system": "http://unitsofmeasure.org",
            "code": "mg/dL",
        },
    }


def _order(
    pid: str, rid: str, code: str, display: str, authored: str, **extra: Any
) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": code, "display": display}],
            "text": display,
        },
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": authored,
        **extra,
    }


def _antacid_cards(tmp_path: Path, tacrolimus: dict[str, Any]) -> list[dict[str, Any]]:
    resources = [
        {"resourceType": "Patient", "id": "p1", "birthDate": "1960-01-01", "gender": "male"},
        tacrolimus,
        _order("p1", "antacid", "237872", "Mylanta chewable", "2026-06-01T10:00:00Z"),
    ]
    write_ndjson(tmp_path / "in", resources)
    run(tmp_path / "in", tmp_path / "out", hooks=["order-select"])
    return [
        c
        for c in read_ndjson(tmp_path / "out" / "cards.ndjson")
        if c["topic"] == "antacid-tacrolimus"
    ]


def test_an_order_ended_since_was_active_when_an_earlier_order_was_placed(tmp_path: Path) -> None:
    """Tacrolimus stopped in September: when the antacid was ordered in June, it was active."""
    stopped = _order(
        "p1",
        "tac",
        "198377",
        "Tacrolimus 1 MG Oral Capsule",
        "2025-12-01T10:00:00Z",
        status="stopped",
        dispenseRequest={"validityPeriod": {"end": "2026-09-01T00:00:00Z"}},
    )
    [card] = _antacid_cards(tmp_path / "a", stopped)
    assert card["at"] == "2026-06-01T10:00:00Z" and card["indicator"] == "warning"
    # Ended before the antacid order: no interaction then.
    ended = {**stopped, "dispenseRequest": {"validityPeriod": {"end": "2026-05-01T00:00:00Z"}}}
    assert _antacid_cards(tmp_path / "b", ended) == []


def test_results_and_orders_after_a_moment_are_not_in_the_chart_yet(tmp_path: Path) -> None:
    resources = [
        {"resourceType": "Patient", "id": "p1", "birthDate": "1960-01-01", "gender": "male"},
        _order("p1", "ppi", "198051", "Omeprazole 20 MG", "2026-06-01T10:00:00Z"),
        _mg("p1", "mg-later", 1.1, "2026-07-01T08:00:00Z"),
    ]
    write_ndjson(tmp_path / "in", resources)
    run(tmp_path / "in", tmp_path / "out")
    cards = read_ndjson(tmp_path / "out" / "cards.ndjson")
    hypo = [(c["hook"], c["indicator"]) for c in cards if c["topic"] == "hypomagnesemia"]
    # The critical result of July is not in the chart of the June order; it is at --at if
    # current (it is not: older than 30 days), so no card at all.
    assert hypo == []
    resources[2] = _mg("p1", "mg-before", 1.1, "2026-05-30T08:00:00Z")
    write_ndjson(tmp_path / "in2", resources)
    run(tmp_path / "in2", tmp_path / "out2")
    cards = read_ndjson(tmp_path / "out2" / "cards.ndjson")
    hooks = {c["hook"] for c in cards if c["topic"] == "hypomagnesemia"}
    assert hooks == {"order-select", "order-sign"}


# -- compare and the report ------------------------------------------------------------------------


def _stricter_cards(tmp_path: Path) -> Path:
    """A copy of the shipped content with the monitoring-gap topic switched off."""
    other = tmp_path / "cards-b"
    shutil.copytree(CARDS, other)
    topic = other / "topics" / "mg-monitoring-gap.yaml"
    topic.write_text(topic.read_text().replace("enabled: true", "enabled: false"))
    return other


def test_compare_shows_both_content_versions_side_by_side(clinic: Path, tmp_path: Path) -> None:
    other = _stricter_cards(tmp_path)
    summary = run(clinic, tmp_path / "out", compare=other)
    mine, theirs = summary["topics"], summary["compare"]["topics"]
    assert sum(mine["mg-monitoring-gap"]["cards"].values()) > 0
    assert sum(theirs["mg-monitoring-gap"]["cards"].values()) == 0
    assert theirs["mg-monitoring-gap"]["mode"] == "off"
    assert mine["hypomagnesemia"]["cards"] == theirs["hypomagnesemia"]["cards"]
    assert summary["compare"]["content_digest"] != summary["simulation"]["content_digest"]
    compared = read_ndjson(tmp_path / "out" / "cards.compare.ndjson")
    assert compared and all(c["topic"] != "mg-monitoring-gap" for c in compared)
    report = (tmp_path / "out" / "report.html").read_text()
    assert "Content B:" in report and str(other) in report
    assert "cards A" in report and "cards B" in report


def test_the_report_is_one_self_contained_page(
    baseline: dict[str, Any], clinic: Path, tmp_path: Path
) -> None:
    run(clinic, tmp_path)
    report = (tmp_path / "report.html").read_text()
    assert report.startswith("<!doctype html>")
    assert report.count("<svg") == 3  # one chart per hook
    assert "<script" not in report and "<link" not in report and "src=" not in report
    assert "hypomagnesemia" in report and "Top firing reasons" in report
    assert "Mg # on DATE is low" in report  # reasons, without the patient's values


def test_summary_json_is_what_the_report_and_headline_read(baseline: dict[str, Any]) -> None:
    assert set(baseline) >= {
        "simulation",
        "population",
        "calls",
        "orders",
        "cards",
        "topics",
        "top_reasons",
        "headline",
        "timing",
        "memory",
    }
    assert baseline["simulation"]["hooks"] == ["patient-view", "order-select", "order-sign"]
    assert baseline["timing"]["patients_per_s"] > 0
    assert baseline["memory"]["peak_rss_mib"] > 0


# -- the command line ----------------------------------------------------------------------------


def test_the_command_prints_the_headline_and_no_progress_bar_without_a_terminal(
    clinic: Path, tmp_path: Path
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cds_service.cli",
            "simulate",
            str(clinic),
            "--at",
            "2026-11-20",
            "--out",
            str(tmp_path),
            "--hooks",
            "patient-view",
        ],
        cwd=REPO,
        capture_output=True,
        timeout=120,
        env={"CDS_PATIENT_HASH_KEY": HASH_KEY, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert "80 patients, 80 patient-views, 0 orders replayed" in out
    assert "per 100 views" in out and "hypomagnesemia" in out
    assert "\r" not in out and "patients/s  ETA" not in out
    assert result.stderr == b""
    summary = orjson.loads((tmp_path / "summary.json").read_bytes())
    assert summary["simulation"]["at"] == "2026-11-20T23:59:59Z"
    assert summary["simulation"]["patient_hash"] == "keyed (CDS_PATIENT_HASH_KEY)"


def test_the_progress_bar_shows_patients_per_second_on_a_terminal() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, enabled=True, label="simulate", total=2000)
    bar.started -= 2.0
    bar.update(1000, force=True)
    bar.finish(2000)
    text = stream.getvalue()
    assert "\r" in text and "1,000/2,000 patients" in text and "patients/s" in text
    assert text.endswith("\n")
    quiet = io.StringIO()
    ProgressBar(quiet, enabled=False, label="simulate", total=5).finish(5)
    assert quiet.getvalue() == ""


def test_at_and_since_default_to_now_and_a_year_before(tmp_path: Path) -> None:
    write_ndjson(tmp_path / "in", [{"resourceType": "Patient", "id": "p"}])
    before = datetime.now(UTC)
    assert main(["simulate", str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 0
    summary = orjson.loads((tmp_path / "out" / "summary.json").read_bytes())
    at = datetime.fromisoformat(summary["simulation"]["at"])
    since = datetime.fromisoformat(summary["simulation"]["orders_since"])
    assert before <= at <= datetime.now(UTC)
    assert at - since == timedelta(days=365)


def test_a_silent_topic_is_counted_as_what_it_would_show_live(clinic: Path, tmp_path: Path) -> None:
    silent = tmp_path / "cards-silent"
    shutil.copytree(CARDS, silent)
    topic = silent / "topics" / "mg-monitoring-gap.yaml"
    topic.write_text(topic.read_text().rstrip("\n") + "\nmode: silent\n")
    summary = run(clinic, tmp_path / "out", cards=silent, compare=CARDS)
    quiet, live = (
        summary["topics"]["mg-monitoring-gap"],
        summary["compare"]["topics"]["mg-monitoring-gap"],
    )
    assert quiet["mode"] == "silent" and live["mode"] == "live"
    assert sum(quiet["cards"].values()) == 0
    assert quiet["silent"] == live["cards"]  # silent today is exactly what live would show
    assert quiet["silent_rates"]["per_100_patient_views"] == live["per_100_patient_views"]
    assert quiet["share_interruptive"] == live["share_interruptive"]
    row = next(r for r in summary["headline"] if r["topic"] == "mg-monitoring-gap")
    assert row["mode"] == "silent"
    assert row["per_100_patient_views"] == live["per_100_patient_views"]
    cards = read_ndjson(tmp_path / "out" / "cards.ndjson")
    gap = [c for c in cards if c["topic"] == "mg-monitoring-gap"]
    assert gap and all(c["silent"] is True for c in gap)
    assert all("silent" not in c for c in cards if c["topic"] != "mg-monitoring-gap")
    assert summary["cards"]["total"] == len(cards) - len(gap)
    report = (tmp_path / "out" / "report.html").read_text()
    assert "(silent)" in report and 'stroke-dasharray="3 2"' in report


@pytest.mark.parametrize(
    ("summary", "reason"),
    [
        (
            "Mg 1.5 mg/dl on 2026-02-17 is low: start oral magnesium, recheck in 1-2 weeks",
            "Mg # on DATE is low: start oral magnesium, recheck in #-# weeks",
        ),
        (
            "Mg 0.62 mmol/L on tacrolimus is below the 0.70 mmol/L transplant target",
            "Mg # on tacrolimus is below the # transplant target",
        ),
        ("K 3.1 mEq/L with Mg < 0.5 mmol/L", "K # with Mg #"),
        ("eGFR 25 mL/min/1.73 m2 on 2026-11-19T08:00:00Z", "eGFR # on DATE"),
    ],
)
def test_a_firing_reason_is_the_summary_without_values_units_or_dates(
    summary: str, reason: str
) -> None:
    from cds_service.simulate._tally import reason_of

    assert reason_of(summary) == reason
