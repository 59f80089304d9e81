"""The numbers a committee asks for, per content version: ``summary.json``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._tally import Tally

HOOKS = ("patient-view", "order-select", "order-sign")
ORDER_HOOKS = ("order-select", "order-sign")
INDICATORS = ("critical", "warning", "info")
INTERRUPTIVE = ("critical", "warning")
TOP_REASONS_PER_TOPIC = 5
TOP_REASONS = 15


def per_100(count: int, whole: int) -> float | None:
    return round(100 * count / whole, 2) if whole else None


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _rates(cards: dict[str, int], views: int, orders: int, hooks: Sequence[str]) -> dict[str, Any]:
    rates: dict[str, Any] = {}
    if "patient-view" in hooks:
        rates["per_100_patient_views"] = per_100(cards.get("patient-view", 0), views)
    order_hooks = [hook for hook in ORDER_HOOKS if hook in hooks]
    if order_hooks:
        rates["per_100_orders"] = {
            hook: per_100(cards.get(hook, 0), orders) for hook in order_hooks
        }
    return rates


@dataclass(frozen=True, slots=True)
class _Scope:
    """What one content version's counts are read against: the hooks and the denominators."""

    tally: Tally
    hooks: Sequence[str]
    views: int
    """Patient-views made."""
    orders: int
    """Orders replayed."""
    patients: int

    def rates(self, cards: dict[str, int]) -> dict[str, Any]:
        return _rates(cards, self.views, self.orders, self.hooks)


def version_summary(
    tally: Tally,
    *,
    topics: Sequence[str],
    modes: dict[str, str],
    hooks: Sequence[str],
    patients: int,
) -> dict[str, Any]:
    """Per topic and indicator: cards by hook, the rates, patients affected, the reasons."""
    scope = _Scope(tally, hooks, tally.calls.get("patient-view", 0), tally.orders, patients)
    seen = {topic for _, topic, _ in (*tally.cards, *tally.silent)}
    result = {
        topic: _topic_summary(scope, topic, modes.get(topic, "live"))
        for topic in [*topics, *sorted(seen - set(topics))]
    }
    return {
        "calls": {hook: tally.calls.get(hook, 0) for hook in hooks},
        "orders": scope.orders,
        "order_sessions": tally.sessions,
        "errors": {f"{hook} {status}": n for (hook, status), n in sorted(tally.errors.items())},
        "cards": _overall(scope),
        "topics": result,
        "top_reasons": _top_reasons(tally),
        "headline": headline(result, hooks),
    }


def _topic_summary(scope: _Scope, topic: str, mode: str) -> dict[str, Any]:
    """One topic: its cards (shown and silent) by hook, rates, patients, indicators, reasons."""
    tally, hooks = scope.tally, scope.hooks
    indicators: dict[str, Any] = {}
    total_by_hook: dict[str, int] = {}
    silent_by_hook: dict[str, int] = {}
    for indicator in INDICATORS:
        entry = _indicator_entry(scope, topic, indicator)
        if entry is None:
            continue
        silent = entry.get("silent", {})
        for hook in hooks:
            total_by_hook[hook] = total_by_hook.get(hook, 0) + entry["cards"][hook]
            silent_by_hook[hook] = silent_by_hook.get(hook, 0) + silent.get(hook, 0)
        indicators[indicator] = entry
    # Of the topic's cards as evaluated: shown, or (silent mode) what it would show.
    evaluated = sum(total_by_hook.values()) + sum(silent_by_hook.values())
    interruptive = sum(
        sum(entry["cards"].values()) + sum(entry.get("silent", {}).values())
        for indicator, entry in indicators.items()
        if indicator in INTERRUPTIVE
    )
    summary: dict[str, Any] = {
        "mode": mode,
        "cards": {hook: total_by_hook.get(hook, 0) for hook in hooks},
    }
    summary.update(scope.rates(summary["cards"]))
    if any(silent_by_hook.values()):
        summary["silent"] = silent_by_hook
        summary["silent_rates"] = scope.rates(silent_by_hook)
    summary["patients_affected"] = tally.topic_patients[topic]
    summary["patients_affected_share"] = share(tally.topic_patients[topic], scope.patients)
    summary["share_interruptive"] = share(interruptive, evaluated)
    summary["indicators"] = indicators
    summary["top_reasons"] = _topic_reasons(tally, topic)
    return summary


def _indicator_entry(scope: _Scope, topic: str, indicator: str) -> dict[str, Any] | None:
    """A topic's cards of one indicator, shown and silent; None if it has none."""
    tally, hooks = scope.tally, scope.hooks
    by_hook = {h: tally.cards[(h, topic, indicator)] for h in hooks}
    silent = {h: tally.silent[(h, topic, indicator)] for h in hooks}
    if not any(by_hook.values()) and not any(silent.values()):
        return None
    entry: dict[str, Any] = {"cards": by_hook}
    entry.update(scope.rates(by_hook))
    if any(silent.values()):
        entry["silent"] = silent
        entry["silent_rates"] = scope.rates(silent)
    entry["patients_affected"] = tally.patients[(topic, indicator)]
    return entry


def _topic_reasons(tally: Tally, topic: str) -> list[dict[str, Any]]:
    """The topic's most frequent reasons, most cards first."""
    ranked = sorted(
        (
            (indicator, reason, count)
            for (t, indicator, reason), count in tally.reasons.items()
            if t == topic
        ),
        key=lambda item: (-item[2], item[1]),
    )
    return [
        {"indicator": indicator, "reason": reason, "cards": count}
        for indicator, reason, count in ranked[:TOP_REASONS_PER_TOPIC]
    ]


def _overall(scope: _Scope) -> dict[str, Any]:
    """Every topic's shown cards together: by hook, rates, and the share of charts with one."""
    tally, hooks = scope.tally, scope.hooks
    all_cards = {h: sum(n for (hook, _, _), n in tally.cards.items() if hook == h) for h in hooks}
    interruptive_all = sum(n for (_, _, i), n in tally.cards.items() if i in INTERRUPTIVE)
    overall: dict[str, Any] = {"total": sum(all_cards.values()), "by_hook": all_cards}
    overall.update(scope.rates(all_cards))
    overall["share_interruptive"] = share(interruptive_all, sum(all_cards.values()))
    overall["patient_views_with_a_card"] = share(tally.views_with_cards, scope.views)
    overall["patients_with_a_card"] = share(tally.patients_with_cards, scope.patients)
    return overall


def _top_reasons(tally: Tally) -> list[dict[str, Any]]:
    """The most frequent reasons across topics, most cards first."""
    return [
        {"topic": t, "indicator": i, "reason": r, "cards": n}
        for (t, i, r), n in sorted(
            tally.reasons.items(), key=lambda item: (-item[1], item[0][0], item[0][2])
        )[:TOP_REASONS]
    ]


def headline(topics: dict[str, Any], hooks: Sequence[str]) -> list[dict[str, Any]]:
    """One row per topic that fired, busiest first: what the README and the CLI print."""
    rows = []
    for topic, data in topics.items():
        if not sum(data["cards"].values()) and "silent" not in data:
            continue
        row: dict[str, Any] = {"topic": topic}
        # A topic in silent mode: the rates it would have live.
        rates = data.get("silent_rates", data) if data["mode"] == "silent" else data
        if "patient-view" in hooks:
            row["per_100_patient_views"] = rates["per_100_patient_views"]
        if "per_100_orders" in rates:
            row["per_100_orders"] = rates["per_100_orders"]
        row["share_interruptive"] = data["share_interruptive"]
        row["patients_affected_share"] = data["patients_affected_share"]
        if data["mode"] != "live":
            row["mode"] = data["mode"]
        rows.append(row)

    def busiest(row: dict[str, Any]) -> tuple[float, float]:
        orders = row.get("per_100_orders") or {}
        return (
            -(row.get("per_100_patient_views") or 0.0),
            -sum(v or 0.0 for v in orders.values()),
        )

    return sorted(rows, key=busiest)


def _cell(value: float | None, suffix: str = "") -> str:
    return "-" if value is None else f"{value:,.1f}{suffix}"


def headline_table(summary: dict[str, Any]) -> str:
    """The headline as a plain-text table (the CLI prints it)."""
    hooks = summary["simulation"]["hooks"]
    header = ["topic"]
    if "patient-view" in hooks:
        header.append("per 100 views")
    header += [f"per 100 orders ({h.split('-')[1]})" for h in ORDER_HOOKS if h in hooks]
    header += ["interruptive", "patients"]
    rows = []
    for row in summary["headline"]:
        cells = [row["topic"] + (f" ({row['mode']})" if "mode" in row else "")]
        if "patient-view" in hooks:
            cells.append(_cell(row.get("per_100_patient_views")))
        orders = row.get("per_100_orders") or {}
        cells += [_cell(orders.get(h)) for h in ORDER_HOOKS if h in hooks]
        interruptive = row.get("share_interruptive")
        cells.append("-" if interruptive is None else f"{interruptive:.0%}")
        affected = row.get("patients_affected_share")
        cells.append("-" if affected is None else f"{affected:.1%}")
        rows.append(cells)
    if not rows:
        return "No cards."
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
