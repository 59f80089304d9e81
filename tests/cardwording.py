"""What no card may say (clinical-rules.md §4.1, §4.3, §4.11), checked over a rendered card.

``wording_problems(card)`` returns a list of human-readable problems (empty when the card is
fine); ``check_wording(card)`` raises ``AssertionError`` listing them. Three rules:

- **forbidden phrases**, case-insensitive, in any string anywhere in the card (summary, detail,
  source, suggestion labels, action descriptions, the suggested resources, override reasons,
  links): advice to delay potassium or calcium for magnesium (§4.1), the unsourced evidence grade
  (§4.13) and the old critical wording (§4.3); K-sparing diuretics in a summary (§4.11);
- **one unit family per clause** of a summary: split on ". " and "; ", a clause may not quote a
  mass unit (mg/dL, mg/L, g/dL, g/L, ng/mL) and a molar one (mmol/L, mEq/L, µmol/L), and an eGFR
  unit (mL/min/1.73 m2, any spelling) is a family of its own;
- **a suggestion's label names only what it orders** (§4.3): a label that names potassium,
  calcium or creatinine must carry an action whose resource orders it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

FORBIDDEN_PHRASES: tuple[str, ...] = (
    "give Mg first",
    "replete Mg before",
    "replete Mg first",
    "replete magnesium before",
    "replete magnesium first",
    "magnesium first",
    "before treating",
    "check Mg before",
    "check magnesium before",
    "Grade 1B",
    "symptoms and arrhythmias are expected",
)
FORBIDDEN_IN_SUMMARY: tuple[str, ...] = ("amiloride", "spironolactone")

_NOT_A_UNIT_BEFORE = r"(?<![A-Za-zµμ/])"
_NOT_A_UNIT_AFTER = r"(?![A-Za-z])"
UNIT_FAMILIES: dict[str, re.Pattern[str]] = {
    "mass": re.compile(
        _NOT_A_UNIT_BEFORE + r"(?:mg/dL|mg/L|g/dL|g/L|ng/mL)" + _NOT_A_UNIT_AFTER, re.IGNORECASE
    ),
    "molar": re.compile(
        _NOT_A_UNIT_BEFORE + r"(?:mmol/L|mEq/L|[µμu]mol/L)" + _NOT_A_UNIT_AFTER, re.IGNORECASE
    ),
    "eGFR": re.compile(r"mL/min/\{?1\.73", re.IGNORECASE),
}
_CLAUSE_SEPARATOR = re.compile(r"\. |; ")

# A label naming one of these must order it: (what, how a label names it, how a resource does).
_LABEL_ANALYTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("potassium", re.compile(r"\bK\b|\bpotassium\b", re.IGNORECASE), "potassium"),
    ("calcium", re.compile(r"\bCa\b|\bcalcium\b", re.IGNORECASE), "calcium"),
    ("creatinine", re.compile(r"\bcreatinine\b", re.IGNORECASE), "creatinine"),
)


def _strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _strings(item, f"{path}[{index}]")


def unit_families(text: str) -> set[str]:
    """The unit families a piece of text quotes."""
    return {family for family, pattern in UNIT_FAMILIES.items() if pattern.search(text)}


def summary_clauses(summary: str) -> list[str]:
    return [clause for clause in _CLAUSE_SEPARATOR.split(summary) if clause.strip()]


def _resource_names(resource: Mapping[str, Any]) -> str:
    concept = resource.get("code") or resource.get("medicationCodeableConcept") or {}
    names = [str(concept.get("text", ""))]
    names += [str(c.get("display", "")) for c in concept.get("coding", []) if isinstance(c, dict)]
    return " ".join(names).casefold()


def wording_problems(card: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for path, text in _strings(card, "card"):
        folded = text.casefold()
        for phrase in FORBIDDEN_PHRASES:
            if phrase.casefold() in folded:
                problems.append(f"{path} says {phrase!r}: {text!r}")
    summary = str(card.get("summary", ""))
    for phrase in FORBIDDEN_IN_SUMMARY:
        if phrase.casefold() in summary.casefold():
            problems.append(f"card.summary names {phrase!r}: {summary!r}")
    for clause in summary_clauses(summary):
        families = unit_families(clause)
        if len(families) > 1:
            problems.append(
                f"card.summary mixes unit families {sorted(families)} in one clause: {clause!r}"
            )
    for index, suggestion in enumerate(card.get("suggestions", [])):
        label = str(suggestion.get("label", ""))
        ordered = " ".join(
            _resource_names(action.get("resource", {}))
            for action in suggestion.get("actions", [])
            if isinstance(action, dict)
        )
        for analyte, named, word in _LABEL_ANALYTES:
            if named.search(label) and word not in ordered:
                problems.append(
                    f"card.suggestions[{index}].label names {analyte} but no action orders it: "
                    f"{label!r}"
                )
    return problems


def check_wording(card: Mapping[str, Any]) -> None:
    problems = wording_problems(card)
    if problems:
        raise AssertionError("\n".join(problems))
