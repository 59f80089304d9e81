"""The medication tables of ``cards/medications.yaml``, compiled for classification."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._schema import Medications, Refinement, Spacing

WORD = re.compile(r"[^\W_]+")

NameKind = Literal["ingredient", "other", "class", "brand"]
# When one name is listed twice, the more specific reading wins.
_KIND_ORDER: dict[str, int] = {"ingredient": 0, "other": 1, "class": 2, "brand": 3}


def words_of(text: str) -> tuple[str, ...]:
    """Lower-cased words: any non-word character separates ("aluminum hydroxide-magnesium")."""
    return tuple(word.lower() for word in WORD.findall(text))


@dataclass(frozen=True, slots=True)
class NameMatch:
    """A configured name found in a text: the words as written, and what they name."""

    written: str
    kind: NameKind
    target: str
    """The ingredient name (ingredient, other), class name (class) or brand (brand), lower-case."""


@dataclass(frozen=True, slots=True)
class WordTable:
    """Names of one or more words, found in a text as whole words, longest first."""

    entries: Mapping[tuple[str, ...], Any]
    longest: int

    @classmethod
    def of(cls, entries: Mapping[tuple[str, ...], Any]) -> WordTable:
        return cls(dict(entries), max((len(key) for key in entries), default=0))

    def find(self, text: str) -> list[tuple[str, Any]]:
        """(words as written, entry) for each name found; overlapping shorter names are skipped."""
        written = WORD.findall(text)
        lowered = [word.lower() for word in written]
        found: list[tuple[str, Any]] = []
        start = 0
        while start < len(lowered):
            for size in range(min(self.longest, len(lowered) - start), 0, -1):
                entry = self.entries.get(tuple(lowered[start : start + size]))
                if entry is not None:
                    found.append((" ".join(written[start : start + size]), entry))
                    start += size
                    break
            else:
                start += 1
        return found

    def any_in(self, text: str) -> bool:
        return bool(self.find(text))


@dataclass(frozen=True, slots=True)
class RouteIndex:
    """Route codes (SNOMED) and dose-form words that say how a product is given."""

    system: str
    non_systemic_codes: frozenset[str]
    parenteral_codes: frozenset[str]
    oral_codes: frozenset[str]
    non_systemic_words: WordTable
    parenteral_words: WordTable
    oral_words: WordTable
    oral_decisive: WordTable


@dataclass(frozen=True, slots=True)
class MedicationIndex:
    """Lookup tables for classifying a medication by code, name, brand and route."""

    rxnorm_system: str
    ingredient_by_code: Mapping[str, str]
    ingredients_by_product: Mapping[str, tuple[str, ...]]
    ingredients_by_brand: Mapping[str, tuple[str, ...]]
    classes_by_ingredient: Mapping[str, frozenset[str]]
    names: WordTable
    routes: RouteIndex
    refinements: tuple[Refinement, ...]
    spacing: Mapping[str, Spacing]
    groups: Mapping[str, frozenset[str]]
    displays: Mapping[str, str]
    # Classification of a medication concept never changes for a loaded content: memoised.
    concept_cache: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def match_names(self, text: str) -> list[NameMatch]:
        return [match for _, match in self.names.find(text)]

    def group(self, name: str) -> frozenset[str]:
        return self.groups[name]


def _names_table(meds: Medications) -> WordTable:
    entries: dict[tuple[str, ...], NameMatch] = {}

    def add(name: str, kind: NameKind, target: str) -> None:
        key = words_of(name)
        current = entries.get(key)
        if key and (current is None or _KIND_ORDER[kind] < _KIND_ORDER[current.kind]):
            entries[key] = NameMatch(name, kind, target)

    for class_name, med_class in meds.classes.items():
        for ingredient in med_class.ingredients:
            for name in (ingredient.name, *ingredient.aliases):
                add(name, "ingredient", ingredient.name.lower())
        for name in med_class.names:
            add(name, "class", class_name)
    for name in meds.other_ingredients:
        add(name, "other", name.lower())
    for brand in meds.brands:
        add(brand, "brand", brand.lower())
    return WordTable.of(entries)


def _words(names: Iterable[str]) -> WordTable:
    return WordTable.of({words_of(name): name for name in names if words_of(name)})


def index_medications(meds: Medications) -> MedicationIndex:
    classes_by_ingredient: dict[str, set[str]] = {}
    ingredient_by_code: dict[str, str] = {}
    for class_name, med_class in meds.classes.items():
        for ingredient in med_class.ingredients:
            name = ingredient.name.lower()
            classes_by_ingredient.setdefault(name, set()).add(class_name)
            if ingredient.code:
                ingredient_by_code[ingredient.code] = name
    routes = meds.routes
    return MedicationIndex(
        rxnorm_system=meds.rxnorm_system,
        ingredient_by_code=ingredient_by_code,
        ingredients_by_product={
            code: tuple(name.lower() for name in names) for code, names in meds.products.items()
        },
        ingredients_by_brand={
            brand.lower(): tuple(name.lower() for name in names)
            for brand, names in meds.brands.items()
        },
        classes_by_ingredient={k: frozenset(v) for k, v in classes_by_ingredient.items()},
        names=_names_table(meds),
        routes=RouteIndex(
            system=routes.system,
            non_systemic_codes=frozenset(routes.non_systemic.codes),
            parenteral_codes=frozenset(routes.parenteral.codes),
            oral_codes=frozenset(routes.oral.codes),
            non_systemic_words=_words(routes.non_systemic.words),
            parenteral_words=_words(routes.parenteral.words),
            oral_words=_words(routes.oral.words),
            oral_decisive=_words(routes.oral.decisive),
        ),
        refinements=tuple(meds.refinements),
        spacing={key.lower(): value for key, value in meds.spacing.items()},
        groups={name: frozenset(members) for name, members in meds.groups.items()},
        displays={name: cls.display for name, cls in meds.classes.items()},
    )
