"""What a rule returns, and the small helpers rules share."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..content import Content, Indicator
from ..content._schema import Thresholds, Windows
from ..facts import Facts, LabResult, MedicationFact


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the results table a card shows."""

    label: str
    value: str
    day: str


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A suggested order, by its formulary entry; left out when the site has no code for it."""

    kind: Literal["medication", "lab"]
    key: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    topic: str
    indicator: Indicator
    values: Mapping[str, object]
    rows: tuple[Row, ...] = ()
    notes: tuple[str, ...] = ()
    suggestions: tuple[Suggestion, ...] = ()
    order_ids: tuple[str, ...] = ()


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
    groups: Mapping[str, frozenset[str]]
    class_display: Mapping[str, str]
    analyte_display: Mapping[str, str]

    @classmethod
    def from_content(cls, content: Content) -> RuleConfig:
        return cls(
            thresholds=content.settings.thresholds,
            windows=content.settings.windows,
            groups=content.medications.groups,
            class_display=content.medications.displays,
            analyte_display={name: a.display for name, a in content.analytes.items()},
        )


Rule = Callable[[Facts, RuleConfig], Outcome]


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


def having(meds: Iterable[MedicationFact], classes: frozenset[str] | set[str]) -> MedicationMatch:
    return MedicationMatch(tuple(med for med in meds if med.classes & classes))


def class_names(match: MedicationMatch, wanted: Iterable[str], config: RuleConfig) -> str:
    """The class names present in a match ("tacrolimus", "cyclosporine"), for short summaries."""
    found = {cls for med in match.meds for cls in med.classes}
    return " and ".join(config.class_display[cls] for cls in wanted if cls in found)


def row(result: LabResult, config: RuleConfig, label: str | None = None) -> Row:
    return Row(
        label or config.analyte_display[result.analyte], result.shown_with_equivalent, result.day
    )


def rows(results: Sequence[LabResult], config: RuleConfig, limit: int = 5) -> tuple[Row, ...]:
    return tuple(row(result, config) for result in results[:limit])


def hook_not_in(facts: Facts, topic: str, hooks: Iterable[str]) -> Outcome | None:
    if facts.hook in hooks:
        return None
    return Outcome(topic, f"not evaluated on {facts.hook}")
