"""The rules: pure functions of the facts, one per card topic."""

from __future__ import annotations

from collections.abc import Mapping

from ..facts import Facts
from ._base import Finding, Outcome, Row, Rule, RuleConfig, Suggestion
from .electrolytes import refractory_hypocalcemia, refractory_hypokalemia
from .interactions import (
    antacid_mycophenolate,
    antacid_tacrolimus,
    mg_supplement_spacing,
    mg_wasting_comedication,
)
from .magnesium import hypomagnesemia, mg_declining, mg_digoxin, mg_monitoring_gap

RULES: Mapping[str, Rule] = {
    "hypomagnesemia": hypomagnesemia,
    "mg-digoxin": mg_digoxin,
    "mg-refractory-hypokalemia": refractory_hypokalemia,
    "mg-refractory-hypocalcemia": refractory_hypocalcemia,
    "antacid-tacrolimus": antacid_tacrolimus,
    "antacid-mycophenolate": antacid_mycophenolate,
    "mg-supplement-spacing": mg_supplement_spacing,
    "mg-monitoring-gap": mg_monitoring_gap,
    "mg-wasting-comedication": mg_wasting_comedication,
    "mg-declining": mg_declining,
}


def run_rules(facts: Facts, config: RuleConfig, enabled: Mapping[str, bool]) -> list[Outcome]:
    """Every rule's outcome, in registry order; disabled topics are reported, not run."""
    return [
        rule(facts, config)
        if enabled.get(topic, True)
        else Outcome(topic, "topic disabled in cards/")
        for topic, rule in RULES.items()
    ]


__all__ = ["RULES", "Finding", "Outcome", "Row", "Rule", "RuleConfig", "Suggestion", "run_rules"]
