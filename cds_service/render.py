"""Findings → CDS Hooks cards, with text from ``cards/`` and resources from the formulary.

Citations are exact: templates call ``cite('key', ...)``, which leaves a marker in the text;
once a card's detail is complete, each marker that is really in it becomes "(short; short)" and
the "Sources:" line lists exactly those sources, strongest first for ``source.label``.
Transplant sources are dropped for a patient not on a calcineurin inhibitor.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from jinja2 import Template, TemplateError

from ._logging import get_logger
from .content import SOURCE_RANK, CompiledTopic, Content, FormularyEntry, Source
from .protocol import CONTENT_EXTENSION
from .rules import Finding, MgPlan, Row, Suggestion

TOPIC_SYSTEM = "urn:cds-service:topic"
SUMMARY_LIMIT = 139
_SPACES = re.compile(r"\s+")
_BLANK_RUNS = re.compile(r"\n{3,}")
_MARKER = re.compile(r"\x00cite:([^\x00]*)\x00")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"[ \t]+([.,;:)])")
_log = get_logger(__name__)

UuidFactory = Callable[[], str]


def _new_uuid() -> str:
    return str(uuid.uuid4())


def results_table(rows: tuple[Row, ...]) -> str:
    if not rows:
        return ""
    lines = ["| Result | Value | Date |", "|---|---|---|"]
    lines += [f"| {r.label} | {r.value} | {r.day} |" for r in rows]
    return "\n".join(lines)


class TemplateFailure(Exception):
    """A card template failed for one finding: ``template`` names it (``summary.warning``,
    ``detail``, ``notes.kidney``, ``advice.lines.iv_cap``), ``error`` is why."""

    def __init__(self, template: str, error: Exception) -> None:
        super().__init__(f"{template}: {error}")
        self.template = template
        self.error = error


def _rendered(template: Template | None, values: Mapping[str, Any], name: str) -> str:
    if template is None:
        raise TemplateFailure(name, KeyError(name))
    try:
        return template.render(values)
    except TemplateError as exc:
        raise TemplateFailure(name, exc) from exc


class Citations:
    """``cite()`` for one card: markers now, "(short; short)" once the text is final."""

    def __init__(self, sources: Mapping[str, Source], *, on_cni: bool) -> None:
        self._sources = sources
        self._on_cni = on_cni
        self.cited: list[str] = []

    def __call__(self, *keys: str) -> str:
        shown = [
            key
            for key in keys
            if key in self._sources and (self._on_cni or not self._sources[key].transplant)
        ]
        return f"\x00cite:{','.join(shown)}\x00" if shown else ""

    def resolve(self, text: str) -> str:
        """Markers → citations, recording each source in order of first appearance."""

        def replace(match: re.Match[str]) -> str:
            keys = [key for key in match.group(1).split(",") if key]
            for key in keys:
                if key not in self.cited:
                    self.cited.append(key)
            return "(" + "; ".join(self._sources[key].short for key in keys) + ")"

        return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", _MARKER.sub(replace, text))

    def strongest(self) -> Source | None:
        ranked = sorted(
            enumerate(self.cited), key=lambda p: (SOURCE_RANK[self._sources[p[1]].kind], p[0])
        )
        return self._sources[ranked[0][1]] if ranked else None

    def line(self) -> str:
        cited = []
        for key in self.cited:
            source = self._sources[key]
            label = f"{source.short}: {source.label}"
            cited.append(f"[{label}]({source.url})" if source.url else label)
        return "**Sources:** " + "; ".join(cited) if cited else ""


def _advice_values(plan: MgPlan | None, content: Content, cite: Citations) -> dict[str, Any]:
    if plan is None:
        return {"mg_action": "", "mg_caution": "", "mg_advice": ""}
    advice = content.advice
    values = {**plan.values, "cite": cite}
    lines = [
        _rendered(advice.lines.get(key), values, f"advice.lines.{key}").strip()
        for key in plan.lines
    ]
    caution = ""
    if plan.caution:
        caution = _rendered(
            advice.cautions.get(plan.caution), values, f"advice.cautions.{plan.caution}"
        ).strip()
    return {
        "mg_action": _rendered(
            advice.actions.get(plan.action), values, f"advice.actions.{plan.action}"
        ).strip(),
        "mg_caution": caution,
        "mg_advice": "\n".join(f"- {line}" for line in lines),
    }


def _template_values(finding: Finding, topic: CompiledTopic, cite: Citations) -> dict[str, Any]:
    values: dict[str, Any] = {
        "indicator": finding.indicator,
        "on_cni": finding.on_cni,
        "cite": cite,
        **finding.values,
    }
    mechanism_key = finding.values.get("mechanism_key")
    if isinstance(mechanism_key, str) and mechanism_key in topic.mechanisms:
        mechanism, alternative = topic.mechanisms[mechanism_key]
        where = f"mechanisms.{mechanism_key}"
        values["mechanism"] = _rendered(mechanism, values, f"{where}.mechanism").strip()
        values["alternative"] = _rendered(alternative, values, f"{where}.alternative").strip()
    values["results_table"] = results_table(finding.rows)
    notes = [
        _rendered(topic.notes.get(key), values, f"notes.{key}").strip() for key in finding.notes
    ]
    values["context"] = "**Context**\n\n" + "\n".join(f"- {n}" for n in notes) if notes else ""
    return values


def _tidy_markdown(text: str) -> str:
    """Content templates may leave runs of blank lines; Markdown needs at most one. A bullet
    that repeats an earlier one (a topic's line and a shared advice line saying the same) is
    said once."""
    lines: list[str] = []
    bullets: set[str] = set()
    for line in text.splitlines():
        line = line.rstrip()
        if line.startswith("- "):
            if line in bullets:
                continue
            bullets.add(line)
        lines.append(line)
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:] if text[:1].islower() else text


def summary_text(text: str) -> str:
    """A rendered summary as the card carries it: one line, single spaces, sentence case
    (before any cut to the length limit)."""
    return _sentence_case(_SPACES.sub(" ", text).strip())


def _summary(text: str, topic: str) -> str:
    summary = summary_text(text)
    if len(summary) > SUMMARY_LIMIT:
        _log.warning("card.summary_truncated", topic=topic, length=len(summary))
        summary = summary[: SUMMARY_LIMIT - 1].rstrip() + "…"
    return summary


def _coding(entry: FormularyEntry) -> dict[str, str]:
    assert entry.code is not None
    return {"system": entry.system, "code": entry.code, "display": entry.display}


def suggested_resource(
    kind: str, entry: FormularyEntry, patient_id: str, note: str | None
) -> dict[str, Any]:
    """A draft FHIR R4 resource for one formulary entry: ServiceRequest or MedicationRequest."""
    subject = {"reference": f"Patient/{patient_id}"}
    if kind == "lab":
        resource: dict[str, Any] = {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "proposal",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://snomed.info/sct",
                            "code": "108252007",
                            "display": "Laboratory procedure",
                        }
                    ]
                }
            ],
            "code": {"coding": [_coding(entry)], "text": entry.display},
            "subject": subject,
        }
    else:
        resource = {
            "resourceType": "MedicationRequest",
            "status": "draft",
            "intent": "proposal",
            "medicationCodeableConcept": {"coding": [_coding(entry)], "text": entry.display},
            "subject": subject,
        }
        if entry.dosage:
            resource["dosageInstruction"] = [{"text": entry.dosage}]
    if note:
        resource["note"] = [{"text": note}]
    return resource


def _label(kind: str, entries: Sequence[FormularyEntry]) -> str:
    if len(entries) == 1:
        return entries[0].label
    names = [entry.short or entry.display for entry in entries]
    return "Order " + ", ".join(names[:-1]) + " and " + names[-1]


def _suggestions(
    suggestions: Iterable[Suggestion],
    content: Content,
    patient_id: str,
    new_uuid: UuidFactory,
    offered: set[tuple[str, str]],
) -> list[dict[str, Any]]:
    """The suggestions with a configured code, each formulary entry offered once per response."""
    built = []
    for suggestion in suggestions:
        table = (
            content.formulary.lab_orders
            if suggestion.kind == "lab"
            else content.formulary.medications
        )
        keys = [
            key
            for key in suggestion.keys
            if table[key].code is not None and (suggestion.kind, key) not in offered
        ]
        if not keys:
            continue  # no code configured (never invent one), or already on a higher card
        offered.update((suggestion.kind, key) for key in keys)
        entries = [table[key] for key in keys]
        label = _label(suggestion.kind, entries)
        built.append(
            {
                "label": label,
                "uuid": new_uuid(),
                "actions": [
                    {
                        "type": "create",
                        "description": entry.label,
                        "resource": suggested_resource(
                            suggestion.kind, entry, patient_id, suggestion.note
                        ),
                    }
                    for entry in entries
                ],
            }
        )
    return built


def _texts(finding: Finding, content: Content) -> tuple[str, str, Citations]:
    """Summary (uncut) and detail with citations resolved, and what they cite; a failing
    template raises ``TemplateFailure`` naming it."""
    topic = content.topics[finding.topic]
    cite = Citations(content.sources, on_cni=finding.on_cni)
    values = _template_values(finding, topic, cite)
    values.update(_advice_values(finding.advice, content, cite))
    detail = cite.resolve(_tidy_markdown(_rendered(topic.detail, values, "detail")))
    summary = _rendered(
        topic.summaries.get(finding.indicator), values, f"summary.{finding.indicator}"
    )
    return cite.resolve(summary), detail, cite


def render_texts(finding: Finding, content: Content) -> tuple[str, str]:
    """The finding's summary (before any cut) and detail, rendered strictly."""
    summary, detail, _ = _texts(finding, content)
    return summary, detail


def render_card(
    finding: Finding,
    content: Content,
    patient_id: str,
    new_uuid: UuidFactory = _new_uuid,
    offered: set[tuple[str, str]] | None = None,
    *,
    topic_url: str | None = None,
) -> dict[str, Any]:
    """One card; a content template that fails at run time still yields a safe card (the
    content check at start-up makes that failure unexpected).

    ``offered`` holds the formulary entries already suggested on higher cards of the response;
    ``topic_url`` (the topic's page) becomes ``source.url``; the card's ``extension`` names the
    content version it was rendered from.
    """
    topic = content.topics[finding.topic]
    try:
        summary, detail, cite = _texts(finding, content)
        summary = _summary(summary, finding.topic)
    except TemplateFailure as exc:
        _log.error(
            "card.render_failed",
            topic=finding.topic,
            template=exc.template,
            error=type(exc.error).__name__,
        )
        cite = Citations(content.sources, on_cni=finding.on_cni)
        summary = f"{topic.topic.display} ({finding.indicator}): see details"
        detail = results_table(finding.rows) or topic.topic.display
    source: dict[str, Any] = {
        "label": topic.topic.display,
        "topic": {"system": TOPIC_SYSTEM, "code": finding.topic, "display": topic.topic.display},
    }
    if (strongest := cite.strongest()) is not None:
        source["label"] = strongest.label
        if strongest.url:
            source["url"] = strongest.url
    if topic_url:
        source["url"] = topic_url
    settings = content.settings
    reasons = topic.topic.override_reasons or settings.default_override_reasons
    sources_line = cite.line()
    card: dict[str, Any] = {
        "uuid": new_uuid(),
        "summary": summary,
        "indicator": finding.indicator,
        "detail": f"{detail}\n\n{sources_line}" if sources_line else detail,
        "source": source,
        "overrideReasons": [
            {"system": settings.override_reason_system, "code": r.code, "display": r.display}
            for r in reasons
        ],
    }
    plan_suggestion = finding.advice.suggestion if finding.advice else None
    wanted = (*finding.suggestions, *((plan_suggestion,) if plan_suggestion else ()))
    suggestions = _suggestions(
        wanted, content, patient_id, new_uuid, set() if offered is None else offered
    )
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "any"
    if topic.topic.links:
        card["links"] = [
            {"label": link.label, "url": link.url, "type": "absolute"} for link in topic.topic.links
        ]
    card["extension"] = {CONTENT_EXTENSION: content.governance.version.as_dict()}
    return card


def render_cards(
    findings: Sequence[Finding],
    content: Content,
    patient_id: str,
    new_uuid: UuidFactory = _new_uuid,
    *,
    topic_urls: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The cards of one response, in order: a suggestion is kept on the highest card only."""
    offered: set[tuple[str, str]] = set()
    urls = topic_urls or {}
    return [
        render_card(f, content, patient_id, new_uuid, offered, topic_url=urls.get(f.topic))
        for f in findings
    ]


def topic_of(card: Mapping[str, Any]) -> str:
    return str(card["source"]["topic"]["code"])
