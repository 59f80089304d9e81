"""The content check: every card text rendered for every state the fixture scenarios and the rules'
declared examples produce. A broken copy of cards/ per failure class makes ``check-config`` exit
non-zero naming the file, the template and the variable, and ``serve`` refuse to start."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from cds_service.checks import check_content, checked_content, fixture_scenarios, value_sets
from cds_service.content import TopicSpec
from cds_service.profile import load_site_content
from cds_service.render import SUMMARY_LIMIT
from cds_service.rules import ADVICE_SPEC, TOPIC_SPECS
from tests.facts.builders import CARDS, REPO

SCENARIO_FILES = sorted((REPO / "fixtures" / "scenarios").glob("*.json"))


def run_cli(
    *args: str, cards: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    if cards is not None:
        env["CDS_CARDS_DIR"] = str(cards)
    return subprocess.run(
        [sys.executable, "-m", "cds_service.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --- the shipped content ----------------------------------------------------------------------


def test_the_shipped_content_passes_and_renders_every_scenario() -> None:
    content, report = checked_content(CARDS)
    assert report.ok
    assert report.scenarios == len(SCENARIO_FILES) == len(fixture_scenarios())
    topics_seen = {topic for topic, _indicator, _state in report.states}
    assert topics_seen == set(content.topics)  # every topic rendered in some scenario
    assert report.renders > 100
    assert "medications.iv_magnesium" in report.suggestions_off
    assert "hypomagnesemia" in report.suggestions_off["medications.iv_magnesium"]


def test_check_config_reports_what_it_rendered_and_the_suggestions_that_are_off() -> None:
    result = run_cli("check-config", str(CARDS))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{CARDS}: OK (11 topics, 10 analytes)"
    assert lines[1].startswith("content version 2.0.0, released 2026-12-03, ")
    assert re.fullmatch(
        rf"rendered \d+ card texts in \d+ topic states \({len(SCENARIO_FILES)} fixture "
        rf"scenarios, \d+ generated value sets\); every summary within {SUMMARY_LIMIT} characters",
        lines[2],
    ), lines[2]
    assert (
        "suggestion off, no code in formulary.yaml: medications.iv_magnesium "
        "(would appear on hypomagnesemia, mg-refractory-hypokalemia)"
    ) in lines


# --- broken copies: check-config and serve -----------------------------------------------------


def copy_cards(tmp_path: Path) -> Path:
    target = tmp_path / "cards"
    shutil.copytree(CARDS, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def cite_unknown_source(cards: Path) -> None:
    """A topic cites a source that sources.yaml does not define."""
    topic = cards / "topics" / "mg-digoxin.yaml"
    text = topic.read_text(encoding="utf-8")
    if 'sources: ["003", "004"]' in text:
        edit(topic, 'sources: ["003", "004"]', 'sources: ["003", "004", "999"]')
    else:  # citations made in the templates
        edit(topic, "{{ results_table }}", "{{ results_table }} {{ cite('999') }}")


LONG = (
    " because magnesium deficiency keeps the kidney from holding on to potassium whatever is given"
)

# (id, breaker, file named, words the message must contain)
FAILURES: list[tuple[str, Callable[[Path], object], str, list[str]]] = [
    (
        "unknown-variable-in-summary",
        lambda d: edit(
            d / "topics" / "hypomagnesemia.yaml",
            "on {{ mg_date }} is critically",
            "on {{ mg_dat }} is critically",
        ),
        "topics/hypomagnesemia.yaml",
        ["summary.critical", "mg_dat"],
    ),
    (
        "unknown-variable-in-detail",
        lambda d: edit(
            d / "topics" / "mg-declining.yaml",
            "fell {{ decline_pct }}%",
            "fell {{ decline_pcnt }}%",
        ),
        "topics/mg-declining.yaml",
        ["detail", "decline_pcnt"],
    ),
    (
        "unknown-variable-in-a-note",
        lambda d: edit(
            d / "topics" / "mg-digoxin.yaml",
            "eGFR {{ egfr }}, {{ egfr_source }}",
            "eGFR {{ egrf }}, {{ egfr_source }}",
        ),
        "topics/mg-digoxin.yaml",
        ["notes.kidney", "egrf"],
    ),
    (
        "summary-over-139-in-one-state",
        lambda d: edit(
            d / "topics" / "mg-refractory-hypokalemia.yaml",
            "low Mg keeps K from correcting{% endif %}",
            f"low Mg keeps K from correcting{LONG}{{% endif %}}",
        ),
        "topics/mg-refractory-hypokalemia.yaml",
        ["summary.warning", f"over the limit of {SUMMARY_LIMIT}", "no current Mg"],
    ),
    (
        "missing-hti1-attribute",
        lambda d: edit(d / "hti1.yaml", "    language: {used: false}\n", ""),
        "hti1.yaml",
        ["uses.language", "Field required"],
    ),
    (
        "source-cited-but-not-defined",
        cite_unknown_source,
        "topics/mg-digoxin.yaml",
        ["999"],
    ),
    (
        "hti1-citation-not-defined",
        lambda d: edit(
            d / "hti1.yaml",
            'citation: [tac-mg-2006, "002", "000"]',
            'citation: [tac-mg-2006, "002", "000", "998"]',
        ),
        "hti1.yaml",
        ["citation", "998"],
    ),
]


@pytest.mark.parametrize(
    ("breaker", "file", "words"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES]
)
def test_check_config_fails_naming_file_template_and_variable(
    tmp_path: Path, breaker: Callable[[Path], object], file: str, words: list[str]
) -> None:
    cards = copy_cards(tmp_path)
    breaker(cards)
    result = run_cli("check-config", str(cards))
    assert result.returncode == 1, result.stdout
    assert result.stdout == ""
    assert result.stderr.startswith("cards/ is invalid: ")
    assert str(cards / file) in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("breaker", "file", "words"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES]
)
def test_serve_refuses_to_start(
    tmp_path: Path, breaker: Callable[[Path], object], file: str, words: list[str]
) -> None:
    cards = copy_cards(tmp_path)
    breaker(cards)
    port = _free_port()
    env_db = f"sqlite:///{tmp_path / 'db' / 'cds.sqlite3'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    env |= {"CDS_CARDS_DIR": str(cards), "CDS_DATABASE_URL": env_db, "CDS_AUTH_MODE": "off"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cds_service.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2  # a configuration error, named in one message
    assert "The service does not start" in result.stderr
    assert str(cards / file) in result.stderr
    for word in words:
        assert word in result.stderr
    with socket.socket() as sock:  # nothing was left listening
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_a_worker_refuses_to_build_the_app_on_a_failing_check(tmp_path: Path) -> None:
    """Each worker checks again as it builds the app (uvicorn's factory)."""
    from cds_service.bootstrap import build_runtime
    from cds_service.errors import ConfigurationError
    from tests.settings_support import make_settings

    cards = copy_cards(tmp_path)
    FAILURES[0][1](cards)
    with pytest.raises(ConfigurationError, match=r"summary\.critical: unknown variable mg_dat"):
        build_runtime(make_settings(cards_dir=cards, database_url="sqlite:///:memory:"))


# --- the rules' declared examples (topic specs) ---------------------------------------------------


SPECS = {spec.code: spec for spec in TOPIC_SPECS}
DECLINING = SPECS["mg-declining"]


def _states(spec: TopicSpec) -> int:
    """Generated states of a spec without mechanisms or advice: value sets × indicators, the
    typical value set both on a CNI and not."""
    return (len(list(value_sets(spec.values))) + 1) * len(spec.indicators)


def test_declared_examples_render_every_indicator_and_value_set() -> None:
    report = check_content(load_site_content(CARDS), scenarios=(), specs=[DECLINING])
    assert report.ok, [str(p) for p in report.problems.values()]
    assert report.value_sets == _states(DECLINING)
    assert report.scenarios == 0


def test_a_value_the_rule_does_not_provide_fails_with_the_value_set() -> None:
    values = {k: v for k, v in DECLINING.values.items() if k != "span_days"}
    spec = replace(DECLINING, values=values)
    report = check_content(load_site_content(CARDS), scenarios=(), specs=[spec])
    messages = [str(p) for p in report.problems.values()]
    assert messages == [
        f"{CARDS / 'topics' / 'mg-declining.yaml'}: summary.info: undefined variable "
        f"'span_days' (in value set typical example values, on a CNI: True and "
        f"{_states(spec) - 1} more)"
    ]


def test_a_summary_too_long_for_one_example_only() -> None:
    long_name = "tacrolimus and cyclosporine " * 3
    spec = replace(DECLINING, values=dict(DECLINING.values, cni=("tacrolimus", long_name)))
    report = check_content(load_site_content(CARDS), scenarios=(), specs=[spec])
    problems = list(report.problems.values())
    assert {p.template for p in problems} == {"summary.info"}
    assert all("over the limit of 139" in p.message for p in problems)
    states = [state.split(": '")[0] for p in problems for state in p.states]
    # Only the value sets with the long name fail: the typical one fits.
    assert states == [
        f"value set cni={long_name!r}, on a CNI: True",
        "value set every value at its last example, on a CNI: True",
    ]


def test_mechanisms_and_notes_are_rendered_for_every_key() -> None:
    hypomagnesemia = SPECS["hypomagnesemia"]
    report = check_content(load_site_content(CARDS), scenarios=(), specs=[hypomagnesemia])
    assert report.ok, [str(p) for p in report.problems.values()]
    broken = replace(hypomagnesemia, notes=("other_wasting", "renal"))
    report = check_content(load_site_content(CARDS), scenarios=(), specs=[broken])
    assert {p.template for p in report.problems.values()} == {"notes.renal"}
    (problem,) = report.problems.values()
    assert problem.message == "no such template (the rule emits it)"


def test_every_advice_the_rules_can_give_is_rendered() -> None:
    wasting = SPECS["mg-wasting-comedication"]
    report = check_content(load_site_content(CARDS), scenarios=(), specs=[wasting])
    assert report.ok
    assert not any(state.startswith("advice") for state in {s[2] for s in report.states})
    digoxin = SPECS["mg-digoxin"]
    report = check_content(load_site_content(CARDS), scenarios=(), specs=[digoxin])
    advice_states = {s[2].split(" (")[0] for s in report.states if s[2].startswith("advice")}
    assert advice_states == {f"advice {action}" for action in ADVICE_SPEC.actions}


def test_value_sets_vary_one_name_at_a_time() -> None:
    sets = list(value_sets({"a": (1, 2, 3), "b": ("x",), "c": (True, False)}))
    assert sets == [
        ("typical example values", {"a": 1, "b": "x", "c": True}),
        ("a=2", {"a": 2, "b": "x", "c": True}),
        ("a=3", {"a": 3, "b": "x", "c": True}),
        ("c=False", {"a": 1, "b": "x", "c": False}),
        ("every value at its last example", {"a": 3, "b": "x", "c": False}),
    ]
