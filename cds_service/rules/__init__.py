"""The rules: pure functions of the facts, one per card topic, each with its spec."""

from __future__ import annotations

from collections.abc import Mapping

from ..content import TopicSpec
from ..facts import Facts
from ._advice import ADVICE_SPEC, plan_magnesium
from ._base import (
    RECHECK_ALL,
    Finding,
    MgPlan,
    Outcome,
    Row,
    Rule,
    RuleConfig,
    Suggestion,
    TopicRule,
)
from .topics import discover

TOPICS: tuple[TopicRule, ...] = discover()
TOPIC_SPECS: tuple[TopicSpec, ...] = tuple(topic.spec for topic in TOPICS)
RULES: Mapping[str, Rule] = {topic.spec.code: topic.rule for topic in TOPICS}


def run_rules(facts: Facts, config: RuleConfig, enabled: Mapping[str, bool]) -> list[Outcome]:
    """Every rule's outcome, in priority order; disabled topics are reported, not run."""
    return [
        topic.rule(facts, config)
        if enabled.get(topic.spec.code, True)
        else Outcome(topic.spec.code, "topic disabled in cards/")
        for topic in TOPICS
    ]


__all__ = [
    "ADVICE_SPEC",
    "RECHECK_ALL",
    "RULES",
    "TOPICS",
    "TOPIC_SPECS",
    "Finding",
    "MgPlan",
    "Outcome",
    "Row",
    "Rule",
    "RuleConfig",
    "Suggestion",
    "TopicRule",
    "plan_magnesium",
    "run_rules",
]
