"""``report.html``: one self-contained page for the committee (inline SVG and CSS, no script).

Bar charts per topic, stacked by indicator, for each hook simulated; with ``--compare`` each
topic has one bar per content version so a threshold change shows its effect. Then the table
behind the charts, the top firing reasons (card summaries with values and dates replaced, so
the page carries no patient's data), and what could not be read.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from ._summary import INDICATORS, ORDER_HOOKS

COLOURS = {"critical": "#c62828", "warning": "#ef8f00", "info": "#1e6fb8"}
_ROW = 22
_LABEL_W = 230
_BAR_W = 420
_VALUE_W = 70

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:60rem;padding:0 1rem;color:#1d2327;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem;
border-bottom:1px solid #dde1e4;padding-bottom:.2rem}
.muted{color:#5b6770}.facts{display:flex;flex-wrap:wrap;gap:.6rem 2rem;margin:1rem 0}
.facts div{min-width:9rem}.facts b{display:block;font-size:1.35rem}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.6rem 0}
th,td{padding:.3rem .5rem;border-bottom:1px solid #e6e9eb;text-align:right;vertical-align:top}
th:first-child,td:first-child,td.text,th.text{text-align:left}
thead th{background:#f4f6f7}.legend span{display:inline-block;margin-right:1rem}
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-.1rem}
.delta-up{color:#b3261e}.delta-down{color:#1b7f3b}svg text{font-family:inherit}
code{background:#f4f6f7;padding:0 .2rem}
"""


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _rate(entry: dict[str, Any], hook: str, *, silent: bool = False) -> float | None:
    source = entry.get("silent_rates", {}) if silent else entry
    if hook == "patient-view":
        value = source.get("per_100_patient_views")
    else:
        value = (source.get("per_100_orders") or {}).get(hook)
    return float(value) if value is not None else None


def _versions(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    versions = [(summary["simulation"]["cards_dir"], summary)]
    if "compare" in summary:
        versions.append((summary["compare"]["cards_dir"], summary["compare"]))
    return versions


def _stacked(entry: dict[str, Any], hook: str) -> float:
    """The length of a topic's bar before scaling: its cards shown and silent, per unit."""
    return (_rate(entry, hook) or 0) + (_rate(entry, hook, silent=True) or 0)


@dataclass(frozen=True, slots=True)
class _Chart:
    """What every bar of one hook's chart shares."""

    hook: str
    unit: str
    """What the rates are per: ``100 patient-views`` or ``100 orders``."""
    scale: float
    """Pixels per card per unit."""
    versions: int


def _chart(summary: dict[str, Any], hook: str) -> str:
    """Horizontal bars per topic (one per version), stacked by indicator."""
    versions = _versions(summary)
    topics = _charted_topics(summary, versions, hook)
    if not topics:
        return '<p class="muted">No cards on this hook.</p>'
    peak = max(
        _stacked(data["topics"][t], hook)
        for t in topics
        for _, data in versions
        if t in data["topics"]
    )
    chart = _Chart(
        hook=hook,
        unit="100 patient-views" if hook == "patient-view" else "100 orders",
        scale=_BAR_W / peak if peak else 0,
        versions=len(versions),
    )
    height = len(topics) * (chart.versions * _ROW + 10) + 10
    width = _LABEL_W + _BAR_W + _VALUE_W
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>Cards per {chart.unit} on {escape(hook)}</title>'
    ]
    y = 10
    for topic in topics:
        parts.append(
            f'<text x="0" y="{y + chart.versions * _ROW / 2 + 4:.0f}" font-size="13">'
            f"{escape(topic)}</text>"
        )
        for index, (_, data) in enumerate(versions):
            parts += _bar(chart, topic, data["topics"].get(topic), index, y)
            y += _ROW
        y += 10
    parts.append("</svg>")
    return "".join(parts)


def _charted_topics(
    summary: dict[str, Any], versions: list[tuple[str, dict[str, Any]]], hook: str
) -> list[str]:
    """The topics with cards on ``hook`` in any version, busiest first."""
    topics = [
        topic
        for topic in summary["topics"]
        if any(
            _rate(data["topics"].get(topic, {}), hook)
            or _rate(data["topics"].get(topic, {}), hook, silent=True)
            for _, data in versions
        )
    ]

    def busiest(topic: str) -> float:
        return -max(_stacked(data["topics"].get(topic, {}), hook) for _, data in versions)

    return sorted(topics, key=busiest)


def _bar(chart: _Chart, topic: str, entry: dict[str, Any] | None, index: int, y: int) -> list[str]:
    """One version's bar for a topic: a segment per indicator, then the silent cards (dashed),
    then the rate shown."""
    parts: list[str] = []
    x = float(_LABEL_W)
    opacity = "1" if index == 0 else "0.55"
    total = 0.0
    hook, unit = chart.hook, chart.unit
    if entry:
        for indicator in INDICATORS:
            value = _rate(entry["indicators"].get(indicator, {}), hook) or 0.0
            if value:
                w = value * chart.scale
                parts.append(
                    f'<rect x="{x:.1f}" y="{y + 3}" width="{max(w, 1):.1f}" '
                    f'height="{_ROW - 6}" fill="{COLOURS[indicator]}" '
                    f'fill-opacity="{opacity}"><title>{escape(topic)} {indicator}: '
                    f"{value:.2f} per {unit}</title></rect>"
                )
                x += w
                total += value
        silent = _rate(entry, hook, silent=True) or 0.0
        if silent:
            w = silent * chart.scale
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{max(w, 1):.1f}" '
                f'height="{_ROW - 6}" fill="none" stroke="#5b6770" '
                f'stroke-dasharray="3 2"><title>{escape(topic)} silent: '
                f"{silent:.2f} per {unit}</title></rect>"
            )
            x += w
    tag = "" if chart.versions == 1 else ("A " if index == 0 else "B ")
    parts.append(
        f'<text x="{x + 6:.1f}" y="{y + _ROW / 2 + 4:.0f}" font-size="12" '
        f'fill="#5b6770">{tag}{total:.1f}</text>'
    )
    return parts


def _legend(compare: bool) -> str:
    items = [
        f'<span><i class="swatch" style="background:{COLOURS[i]}"></i>{i}</span>'
        for i in INDICATORS
    ]
    items.append(
        '<span><i class="swatch" style="border:1px dashed #5b6770"></i>silent (not shown)</span>'
    )
    if compare:
        items.append("<span>A: solid · B: lighter</span>")
    return f'<p class="legend muted">{"".join(items)}</p>'


def _topic_table(summary: dict[str, Any]) -> str:
    hooks = summary["simulation"]["hooks"]
    versions = _versions(summary)
    compare = len(versions) > 1
    columns: list[tuple[str, str]] = []
    if "patient-view" in hooks:
        columns.append(("patient-view", "per 100 patient-views"))
    columns += [(h, f"per 100 orders, {h}") for h in ORDER_HOOKS if h in hooks]
    head = "<th>topic</th><th>indicator</th>"
    for _, label in columns:
        head += f"<th>{escape(label)}{' (A → B)' if compare else ''}</th>"
    head += "<th>patients affected</th><th>interruptive</th>"
    rows = []
    for topic, data in summary["topics"].items():
        other = summary["compare"]["topics"].get(topic) if compare else None
        indicators = [
            i for i in INDICATORS if i in data["indicators"] or (other and i in other["indicators"])
        ]
        mode = "" if data["mode"] == "live" else f' <span class="muted">({data["mode"]})</span>'
        for position, indicator in enumerate(indicators or ["-"]):
            mine = data["indicators"].get(indicator, {})
            theirs = other["indicators"].get(indicator, {}) if other else {}
            cells = [f"<td>{escape(topic)}{mode}</td>" if position == 0 else "<td></td>"]
            cells.append(f'<td class="text">{escape(indicator)}</td>')
            for hook, _ in columns:
                a = _rate(mine, hook)
                text = _fmt(a, 2)
                if compare:
                    b = _rate(theirs, hook)
                    text += f" → {_fmt(b, 2)}"
                    if (a or 0) != (b or 0):
                        css = "delta-up" if (b or 0) > (a or 0) else "delta-down"
                        text = f'<span class="{css}">{text}</span>'
                cells.append(f"<td>{text}</td>")
            cells.append(f"<td>{mine.get('patients_affected', 0):,}</td>")
            cells.append(f"<td>{_pct(data['share_interruptive']) if position == 0 else ''}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _reasons(summary: dict[str, Any]) -> str:
    versions = _versions(summary)
    compare = len(versions) > 1
    counts: list[dict[tuple[str, str, str], int]] = [
        {(r["topic"], r["indicator"], r["reason"]): r["cards"] for r in data["top_reasons"]}
        for _, data in versions
    ]
    keys = list(dict.fromkeys(k for c in counts for k in c))
    keys.sort(key=lambda k: -max(c.get(k, 0) for c in counts))
    head = "<th>topic</th><th>indicator</th><th class='text'>card summary</th><th>cards</th>"
    if compare:
        head = head.replace("<th>cards</th>", "<th>cards A</th><th>cards B</th>")
    rows = []
    for topic, indicator, reason in keys:
        cells = (
            f"<td>{escape(topic)}</td><td class='text'>{escape(indicator)}</td>"
            f"<td class='text'>{escape(reason)}</td>"
        )
        for count in counts:
            cells += f"<td>{count.get((topic, indicator, reason), 0):,}</td>"
        rows.append(f"<tr>{cells}</tr>")
    if not rows:
        return '<p class="muted">No cards.</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _quality(summary: dict[str, Any]) -> str:
    population = summary["population"]
    items = [
        f"<li>{population['malformed_lines']:,} malformed NDJSON line(s) skipped</li>",
        f"<li>{sum(population['without_patient'].values()):,} resource(s) without a patient "
        "reference</li>",
        f"<li>{population['patients_without_patient_resource']:,} patient(s) with resources but "
        "no Patient resource</li>",
    ]
    for problem in population["first_malformed"][:10]:
        items.append(
            f"<li><code>{escape(problem['file'])}</code> line {problem['line']:,}: "
            f"{escape(problem['reason'])}</li>"
        )
    for error in population["file_errors"]:
        items.append(f"<li><code>{escape(error['file'])}</code>: {escape(error['error'])}</li>")
    errors = summary.get("errors") or {}
    for name, count in errors.items():
        items.append(f"<li>{count:,} call(s) answered {escape(name)} instead of cards</li>")
    if population["not_requested"]:
        skipped = ", ".join(f"{k} {v:,}" for k, v in population["not_requested"].items())
        items.append(f"<li>not asked for by any prefetch key: {escape(skipped)}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def render_report(summary: dict[str, Any]) -> str:
    simulation = summary["simulation"]
    population = summary["population"]
    hooks = simulation["hooks"]
    calls = summary["calls"]
    cards = summary["cards"]
    compare = "compare" in summary
    facts = [
        ("patients", f"{population['patients']:,}"),
        ("patient-views", f"{calls.get('patient-view', 0):,}"),
        ("orders replayed", f"{summary['orders']:,}"),
        ("cards shown", f"{cards['total']:,}"),
        ("interruptive", _pct(cards["share_interruptive"])),
        ("views with a card", _pct(cards.get("patient_views_with_a_card"))),
    ]
    versions = (
        f"<p>Content A: <code>{escape(simulation['cards_dir'])}</code> "
        f"({escape(simulation['content_digest'])})"
    )
    if compare:
        other = summary["compare"]
        versions += (
            f"<br>Content B: <code>{escape(other['cards_dir'])}</code> "
            f"({escape(other['content_digest'])})"
        )
    versions += "</p>"
    charts = []
    for hook in hooks:
        unit = "100 patient-views" if hook == "patient-view" else "100 orders"
        charts.append(f"<h3>{escape(hook)}: cards per {unit}</h3>{_chart(summary, hook)}")
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Alert burden before go-live</title><style>{CSS}</style></head><body>
<h1>Alert burden before go-live</h1>
<p class="muted">The service's own rules and content, run on
<code>{escape(population["directory"])}</code> as of {escape(simulation["at"])}; orders authored
since {escape(simulation["orders_since"])} replayed as drafts. Generated
{escape(summary["generated_at"])}.</p>
{versions}
<div class="facts">{"".join(f"<div><b>{v}</b>{escape(k)}</div>" for k, v in facts)}</div>
<h2>How often each topic fires</h2>
{_legend(compare)}
{"".join(charts)}
<h2>Per topic and indicator</h2>
<p class="muted">Interruptive = warning + critical, as a share of the topic's cards shown.</p>
{_topic_table(summary)}
<h2>Top firing reasons</h2>
<p class="muted">Card summaries with values and dates replaced by # and DATE.</p>
{_reasons(summary)}
<h2>Data the simulation could not use</h2>
{_quality(summary)}
</body></html>
"""
    return body
