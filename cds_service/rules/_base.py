"""What a rule returns, and the small helpers rules share."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ..content import Content, Dosing, Indicator, Spacing, Thresholds, TopicSpec, Windows
from ..facts import Facts, LabResult, MedicationFact

# The lab orders that "recheck Mg, K, Ca and creatinine" means, in the formulary's order.
RECHECK_ALL = ("magnesium", "potassium", "calcium", "creatinine")


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the results table a card shows."""

    label: str
    value: str
    day: str


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A suggested order: one or more formulary entries of one kind, with a note for the order.

    Entries the site has no code for are left out when the card is rendered (never invented),
    and the label names only what is left.
    """

    kind: Literal["medication", "lab"]
    keys: tuple[str, ...]
    note: str | None = None


@dataclass(frozen=True, slots=True)
class MgPlan:
    """What a card says about giving magnesium: the action for the summary, the lines for the
    detail (keys of ``advice.yaml``), the values they quote and the order suggestion, if any."""

    action: str
    caution: str | None
    """A short caution for summaries that do not quote the action (kidney, age, IV given)."""
    lines: tuple[str, ...]
    values: Mapping[str, object]
    suggestion: Suggestion | None


@dataclass(frozen=True, slots=True)
class Finding:
    topic: str
    indicator: Indicator
    values: Mapping[str, object]
    rows: tuple[Row, ...] = ()
    notes: tuple[str, ...] = ()
    suggestions: tuple[Suggestion, ...] = ()
    order_ids: tuple[str, ...] = ()
    advice: MgPlan | None = None
    on_cni: bool = False
    """Transplant sources are cited only for a patient on a calcineurin inhibitor."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """A rule's verdict with the reason, for the trace; ``finding`` is set when it fired."""

    topic: str
    why: str
    finding: Finding | None = None

    @property
    def fired(self) -> bool:
        return self.finding is not None


@dataclass(frozen=True, slots=True)
class RuleConfig:
    thresholds: Thresholds
    windows: Windows
    dosing: Dosing
    groups: Mapping[str, frozenset[str]]
    class_display: Mapping[str, str]
    analyte_display: Mapping[str, str]
    orderable: frozenset[str]
    """Formulary entries the site has a code for (``medication:key`` / ``lab:key``)."""
    oral_dose: str
    oral_product: str
    spacing: Mapping[str, Spacing]

    @classmethod
    def from_content(cls, content: Content) -> RuleConfig:
        formulary = content.formulary
        orderable = {f"medication:{k}" for k, e in formulary.medications.items() if e.code}
        orderable |= {f"lab:{k}" for k, e in formulary.lab_orders.items() if e.code}
        oral = formulary.medications["oral_magnesium"]
        return cls(
            thresholds=content.settings.thresholds,
            windows=content.settings.windows,
            dosing=content.settings.dosing,
            groups=content.medications.groups,
            class_display=content.medications.displays,
            analyte_display={name: a.display for name, a in content.analytes.items()},
            orderable=frozenset(orderable),
            oral_dose=oral.dosage or oral.display,
            oral_product=oral.display,
            spacing=content.medications.spacing,
        )

    def can_order(self, kind: str, key: str) -> bool:
        return f"{kind}:{key}" in self.orderable


Rule = Callable[[Facts, RuleConfig], Outcome]


@dataclass(frozen=True, slots=True)
class TopicRule:
    """A topic: its spec (what content must provide) and the rule that decides it."""

    spec: TopicSpec
    rule: Rule


@dataclass(frozen=True, slots=True)
class MedicationMatch:
    meds: tuple[MedicationFact, ...] = field(default=())

    def __bool__(self) -> bool:
        return bool(self.meds)

    @property
    def names(self) -> str:
        """Display texts of the matched medications, de-duplicated, in order."""
        return ", ".join(dict.fromkeys(med.display for med in self.meds))

    @property
    def order_ids(self) -> tuple[str, ...]:
        return tuple(
            f"{m.resource_type}/{m.resource_id}"
            for m in self.meds
            if m.origin == "draft" and m.resource_id
        )

    @property
    def ingredients(self) -> frozenset[str]:
        return frozenset(i for med in self.meds for i in med.ingredients)

    @property
    def short_names(self) -> str:
        """Ingredient names for summaries ("magnesium oxide"); the display text when a product
        was recognised without naming an ingredient."""
        names: list[str] = []
        for med in self.meds:
            names.extend(sorted(med.ingredients) or [med.display])
        return " and ".join(dict.fromkeys(names))


def having(meds: Iterable[MedicationFact], classes: frozenset[str] | set[str]) -> MedicationMatch:
    return MedicationMatch(tuple(med for med in meds if med.classes & classes))


def class_names(match: MedicationMatch, wanted: Iterable[str], config: RuleConfig) -> str:
    """The class names present in a match ("tacrolimus", "cyclosporine"), for short summaries."""
    found = {cls for med in match.meds for cls in med.classes}
    return " and ".join(config.class_display[cls] for cls in wanted if cls in found)


def cni_name(facts: Facts) -> str:
    """ "tacrolimus", "cyclosporine", "tacrolimus and cyclosporine", or "" (no CNI)."""
    if facts.cni is None:
        return ""
    return " and ".join(sorted(facts.cni.classes))


def row(result: LabResult, config: RuleConfig, label: str | None = None) -> Row:
    return Row(
        label or config.analyte_display[result.analyte], result.shown_with_equivalent, result.day
    )


def rows(results: Sequence[LabResult], config: RuleConfig, limit: int = 5) -> tuple[Row, ...]:
    return tuple(row(result, config) for result in results[:limit])


def hook_not_in(facts: Facts, spec: TopicSpec) -> Outcome | None:
    if facts.hook in spec.hooks:
        return None
    return Outcome(spec.code, f"not evaluated on {facts.hook}")


def days_ago(facts: Facts, when: datetime) -> int:
    return max((facts.now - when).days, 0)


def recheck(facts: Facts, keys: tuple[str, ...], note: str) -> Suggestion | None:
    """A lab recheck, leaving out a serum Mg that is already among the draft orders."""
    wanted = tuple(k for k in keys if not (k == "magnesium" and facts.mg_check_ordered))
    return Suggestion("lab", wanted, note) if wanted else None


def first_true(facts: Facts, table: Sequence[tuple[str | None, str]]) -> str:
    """The value of the first row whose predicate holds (None: always); tables end with None."""
    for predicate, value in table:
        if predicate is None or facts.holds(predicate):
            return value
    raise ValueError("a predicate table must end with a (None, value) row")


def all_true(facts: Facts, table: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """The values of every row whose predicate holds, in table order."""
    return tuple(value for predicate, value in table if facts.holds(predicate))
