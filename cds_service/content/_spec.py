"""What a rule declares about its topic, so content can be checked against it at load."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ._schema import Indicator

# Values every card template may use, whatever the topic: the renderer provides them.
COMMON_VALUES: Mapping[str, tuple[object, ...]] = {
    "indicator": ("warning",),
    "results_table": (
        "| Result | Value | Date |\n|---|---|---|\n| Mg | 1.1 mg/dL | 2026-11-19 |",
        "",
    ),
    "context": ("**Context**\n\n- On tacrolimus.", ""),
    "mg_action": ("start oral magnesium", ""),
    "mg_advice": ("- Magnesium oxide 400 mg by mouth at night.", ""),
    "mg_caution": ("kidney failure: dose with nephrology", ""),
    "on_cni": (True, False),
}


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic as its rule produces it: the hooks it runs on, what it emits, what it provides.

    ``values`` maps every template variable the rule provides to example values, the first a
    typical one: the loader checks that templates use only declared names, and the content check
    renders every template with these examples. ``notes`` and ``mechanisms`` are the keys of the
    topic file's ``notes`` and ``mechanisms`` the rule may use. ``priority`` orders topics with
    the same indicator (lower first) and the trace.
    """

    code: str
    title: str
    hooks: tuple[str, ...]
    indicators: tuple[Indicator, ...]
    values: Mapping[str, tuple[object, ...]]
    notes: tuple[str, ...] = ()
    mechanisms: tuple[str, ...] = ()
    priority: int = 100

    def template_names(self) -> frozenset[str]:
        """Every variable a template of this topic may use."""
        names = set(self.values) | set(COMMON_VALUES)
        if self.mechanisms:
            names |= {"mechanism", "alternative"}
        return frozenset(names)


@dataclass(frozen=True, slots=True)
class AdviceSpec:
    """The shared magnesium advice (``advice.yaml``): its keys and the values its texts use."""

    actions: tuple[str, ...]
    cautions: tuple[str, ...]
    lines: tuple[str, ...]
    values: Mapping[str, tuple[object, ...]]
