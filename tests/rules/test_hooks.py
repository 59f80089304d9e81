"""Every card topic fires on exactly the hooks the contract's table names, and not on others.

Each scenario is built so the topic's clinical condition holds on every hook: what it has on
the chart (active orders, labs) and what is being ordered (drafts, all selected in order-select).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cds_service.rules import RULES, RuleConfig, run_rules
from cds_service.rules import RULES as TOPIC_CODES
from tests.facts.builders import (
    draft,
    evaluate,
    fired_topics,
    ionized_ca,
    make_facts,
    mg,
    outcomes,
    potassium,
    rx,
    shipped,
)

HOOKS = ("patient-view", "order-select", "order-sign")


def _scenario(**kw: Any) -> Callable[[], dict[str, Any]]:
    # Built fresh for every call so resource ids never collide between parametrised cases.
    def build() -> dict[str, Any]:
        return {key: value() if callable(value) else value for key, value in kw.items()}

    return build


# topic -> (scenario, {hook: expected indicator}); a hook not listed must not fire.
MATRIX: dict[str, tuple[Callable[[], dict[str, Any]], dict[str, str]]] = {
    "hypermagnesemia": (
        _scenario(labs=lambda: [mg(5.0)], drafts=lambda: [draft("amlodipine")]),
        {"patient-view": "critical", "order-select": "critical", "order-sign": "critical"},
    ),
    "hypomagnesemia": (
        _scenario(labs=lambda: [mg(1.0)], drafts=lambda: [draft("amlodipine")]),
        {"patient-view": "critical", "order-select": "critical", "order-sign": "critical"},
    ),
    "mg-digoxin": (
        _scenario(
            labs=lambda: [mg(1.9)],
            meds=lambda: [rx("digoxin")],
            drafts=lambda: [draft("digoxin")],
        ),
        {"patient-view": "warning", "order-select": "warning"},
    ),
    "mg-refractory-hypokalemia": (
        _scenario(labs=lambda: [potassium(3.2), mg(1.5)], drafts=lambda: [draft("kcl")]),
        {"patient-view": "warning", "order-select": "warning", "order-sign": "warning"},
    ),
    "mg-refractory-hypocalcemia": (
        _scenario(labs=lambda: [ionized_ca(1.0), mg(1.5)], drafts=lambda: [draft("ca_carbonate")]),
        {"patient-view": "warning", "order-select": "warning", "order-sign": "warning"},
    ),
    "antacid-tacrolimus": (
        _scenario(
            meds=lambda: [rx("tacrolimus"), rx("antacid")], drafts=lambda: [draft("antacid")]
        ),
        {"patient-view": "info", "order-select": "warning", "order-sign": "warning"},
    ),
    "antacid-mycophenolate": (
        _scenario(
            meds=lambda: [rx("mycophenolate"), rx("antacid")], drafts=lambda: [draft("antacid")]
        ),
        {"patient-view": "info", "order-select": "warning", "order-sign": "warning"},
    ),
    "mg-supplement-spacing": (
        _scenario(
            meds=lambda: [rx("levothyroxine")],
            drafts=lambda: [draft("mg_oxide")],
        ),
        {"order-select": "info", "order-sign": "info"},
    ),
    "mg-monitoring-gap": (
        _scenario(
            labs=lambda: [mg(2.0, days_ago=60)],
            meds=lambda: [rx("tacrolimus", authored_days_ago=300)],
            drafts=lambda: [draft("tacrolimus")],
        ),
        {"patient-view": "info", "order-select": "info"},
    ),
    "mg-wasting-comedication": (
        _scenario(
            labs=lambda: [mg(2.0)],
            meds=lambda: [rx("tacrolimus")],
            drafts=lambda: [draft("omeprazole")],
        ),
        {"order-select": "info", "order-sign": "info"},
    ),
    "mg-declining": (
        _scenario(
            labs=lambda: [mg(2.2, days_ago=90), mg(2.0, days_ago=45), mg(1.76, days_ago=2)],
            meds=lambda: [rx("tacrolimus")],
            drafts=lambda: [draft("tacrolimus")],
        ),
        {"patient-view": "info"},
    ),
}


def test_matrix_covers_every_topic_and_rule() -> None:
    assert set(MATRIX) == set(TOPIC_CODES) == set(RULES)


@pytest.mark.parametrize("hook", HOOKS)
@pytest.mark.parametrize("topic", list(MATRIX))
def test_topic_fires_on_exactly_its_hooks(topic: str, hook: str) -> None:
    scenario, expected = MATRIX[topic]
    kw = scenario()
    if hook == "patient-view":
        kw.pop("drafts", None)
    outcome = evaluate(topic, hook, **kw)
    if hook in expected:
        assert outcome.finding is not None, outcome.why
        assert outcome.finding.topic == topic
        assert outcome.finding.indicator == expected[hook]
    else:
        assert outcome.finding is None, outcome.finding
        # Topics the contract does not name for this hook are not even evaluated, except the
        # order-time K/Ca cards, which are evaluated but need a supplement being ordered.
        assert outcome.why == f"not evaluated on {hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_nothing_fires_without_relevant_data(hook: str) -> None:
    drafts = [draft("amlodipine")] if hook != "patient-view" else []
    assert fired_topics(hook, drafts=drafts, meds=[rx("amlodipine")], labs=[mg(2.0)]) == {}


@pytest.mark.parametrize("hook", HOOKS)
def test_nothing_fires_for_a_patient_with_no_data(hook: str) -> None:
    assert fired_topics(hook) == {}


def test_one_outcome_per_topic() -> None:
    facts = make_facts(
        "order-sign",
        labs=[mg(1.0), potassium(2.8), ionized_ca(1.0)],
        meds=[rx("tacrolimus"), rx("mycophenolate"), rx("digoxin"), rx("levothyroxine")],
        drafts=[
            draft("antacid"),
            draft("mg_oxide"),
            draft("kcl"),
            draft("ca_carbonate"),
            draft("omeprazole"),
        ],
    )
    result = outcomes(facts)
    assert list(result) == list(RULES)
    assert {t: o.finding.indicator for t, o in result.items() if o.finding} == {
        "hypomagnesemia": "critical",
        "mg-refractory-hypokalemia": "critical",
        "mg-refractory-hypocalcemia": "warning",
        "antacid-tacrolimus": "warning",
        "antacid-mycophenolate": "warning",
        "mg-supplement-spacing": "info",
        "mg-wasting-comedication": "warning",
    }


def test_disabled_topic_is_reported_not_run() -> None:
    facts = make_facts(labs=[mg(1.0)])
    result = run_rules(facts, RuleConfig.from_content(shipped()), {"hypomagnesemia": False})
    by_topic = {o.topic: o for o in result}
    assert by_topic["hypomagnesemia"].finding is None
    assert by_topic["hypomagnesemia"].why == "topic disabled in cards/"
