"""What a CDS committee answers for, checked over every card of every fixture scenario:

- each source a card's detail cites is on its "Sources:" line, and the line lists nothing else;
  transplant sources appear only for a patient on a calcineurin inhibitor;
- the card's ``source.label`` names the most authoritative source it cites;
- no suggested order is repeated across the cards of one response;
- every summary starts with a capital letter (sentence case);
- numbers keep the precision the lab reported ("3.0" stays "3.0").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from cds_service.content import SOURCE_RANK
from cds_service.profile import load_site_content
from cds_service.scenarios import load_scenario

from .test_scenarios import SCENARIO_FILES, _response

CONTENT = load_site_content(Path(__file__).resolve().parent.parent / "cards")
SOURCES = CONTENT.sources
BY_SHORT = {source.short: key for key, source in SOURCES.items()}
_CITATION = re.compile(r"\(([^()]+)\)")
_SOURCES_LINE = re.compile(r"^\*\*Sources:\*\* (.*)$", re.MULTILINE)


def cited_sources(detail: str) -> list[str]:
    """Source keys cited in the text above the Sources line, in order of first mention."""
    text = _SOURCES_LINE.sub("", detail)
    keys: list[str] = []
    for group in _CITATION.findall(text):
        parts = [part.strip() for part in group.split(";")]
        if parts and all(part in BY_SHORT for part in parts):
            keys += [BY_SHORT[part] for part in parts if BY_SHORT[part] not in keys]
    return keys


def listed_sources(detail: str) -> list[str]:
    """Source keys on the card's Sources line."""
    match = _SOURCES_LINE.search(detail)
    if match is None:
        return []
    keys = []
    for key, source in SOURCES.items():
        if f"{source.short}: {source.label}" in match.group(1):
            keys.append(key)
    return keys


def _cards(path: Path) -> list[Mapping[str, Any]]:
    cards: list[Mapping[str, Any]] = _response(path)["cards"]
    return cards


def _on_cni(path: Path) -> bool:
    """Whether the scenario's patient is on tacrolimus or cyclosporine (from its own text)."""
    request = orjson.dumps(load_scenario(path, shift=False).request).decode().lower()
    return any(word in request for word in ("tacrolimus", "cyclosporine", "prograf", "envarsus"))


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_each_cited_source_is_listed_and_nothing_else(path: Path) -> None:
    for card in _cards(path):
        cited, listed = cited_sources(card["detail"]), listed_sources(card["detail"])
        assert cited, f"{card['summary']}: cites nothing"
        assert set(cited) == set(listed), (card["summary"], cited, listed)


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_transplant_sources_only_for_a_patient_on_a_cni(path: Path) -> None:
    if _on_cni(path):
        return
    for card in _cards(path):
        transplant = [key for key in listed_sources(card["detail"]) if SOURCES[key].transplant]
        assert not transplant, (card["summary"], transplant)


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_the_source_label_is_the_strongest_cited_source(path: Path) -> None:
    for card in _cards(path):
        cited = cited_sources(card["detail"])
        strongest = min(SOURCE_RANK[SOURCES[key].kind] for key in cited)
        label_key = next(key for key in cited if SOURCES[key].label == card["source"]["label"])
        assert SOURCE_RANK[SOURCES[label_key].kind] == strongest, card["summary"]


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_no_suggested_order_repeats_across_the_cards_of_a_response(path: Path) -> None:
    ordered: list[str] = []
    for card in _cards(path):
        for suggestion in card.get("suggestions", ()):
            for action in suggestion["actions"]:
                resource = action["resource"]
                concept = resource.get("code") or resource["medicationCodeableConcept"]
                ordered += [coding["code"] for coding in concept["coding"]]
    assert len(ordered) == len(set(ordered)), ordered


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_summaries_start_with_a_capital(path: Path) -> None:
    for card in _cards(path):
        assert not card["summary"][:1].islower(), card["summary"]


def test_the_reported_precision_is_kept() -> None:
    # K 3.0 mmol/L as the sandbox sends it: never "K 3 mmol/L".
    (path,) = [p for p in SCENARIO_FILES if p.stem == "sandbox-quirks-kcl-sign-k-3-0"]
    summaries = [card["summary"] for card in _cards(path)]
    assert any("K 3.0 mmol/L" in summary for summary in summaries), summaries
    assert not any(re.search(r"\bK 3 mmol/L", summary) for summary in summaries)


def test_the_checks_can_fail() -> None:
    label = SOURCES["003"]
    detail = f"Text (003).\n\n**Sources:** {label.short}: {label.label}; Prograf label: x"
    assert cited_sources(detail) == ["003"]
    assert listed_sources(detail) == ["003"]
    other = SOURCES["prograf-label"]
    detail += f"; {other.short}: {other.label}"
    assert set(listed_sources(detail)) == {"003", "prograf-label"}
    assert set(cited_sources(detail)) != set(listed_sources(detail))  # the test above would fail
