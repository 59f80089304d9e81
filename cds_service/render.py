"""Findings → CDS Hooks cards, with text from ``cards/`` and resources from the formulary."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import Template, TemplateError

from ._logging import get_logger
from .content import CompiledTopic, Content
from .content._schema import FormularyEntry
from .protocol import CONTENT_EXTENSION
from .rules import Finding, Row, Suggestion

TOPIC_SYSTEM = "urn:cds-service:topic"
SUMMARY_LIMIT = 139
_SPACES = re.compile(r"\s+")
_BLANK_RUNS = re.compile(r"\n{3,}")
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
    ``detail``, ``notes.kidney``), ``error`` is why."""

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


def _template_values(finding: Finding, topic: CompiledTopic) -> dict[str, Any]:
    values: dict[str, Any] = {"indicator": finding.indicator, **finding.values}
    mechanism_key = finding.values.get("mechanism_key")
    if isinstance(mechanism_key, str) and mechanism_key in topic.topic.mechanisms:
        values.update(topic.topic.mechanisms[mechanism_key].model_dump())
    values["results_table"] = results_table(finding.rows)
    notes = [
        _rendered(topic.notes.get(key), values, f"notes.{key}").strip() for key in finding.notes
    ]
    values["notes"] = notes
    values["context"] = "**Context**\n\n" + "\n".join(f"- {n}" for n in notes) if notes else ""
    return values


def _tidy_markdown(text: str) -> str:
    """Content templates may leave runs of blank lines; Markdown needs at most one."""
    return _BLANK_RUNS.sub("\n\n", "\n".join(line.rstrip() for line in text.splitlines())).strip()


def summary_text(text: str) -> str:
    """A rendered summary as the card carries it: one line, single spaces (before any cut)."""
    return _SPACES.sub(" ", text).strip()


def _summary(text: str, topic: str) -> str:
    summary = summary_text(text)
    if len(summary) > SUMMARY_LIMIT:
        _log.warning("card.summary_truncated", topic=topic, length=len(summary))
        summary = summary[: SUMMARY_LIMIT - 1].rstrip() + "…"
    return summary


def _sources_line(topic: CompiledTopic, content: Content) -> str:
    cited = []
    for ref in topic.topic.sources:
        source = content.sources[ref]
        label = f"{ref}: {source.label}"
        cited.append(f"[{label}]({source.url})" if source.url else label)
    return "**Sources:** " + "; ".join(cited)


def _coding(entry: FormularyEntry) -> dict[str, str]:
    assert entry.code is not None
    return {"system": entry.system, "code": entry.code, "display": entry.display}


def suggested_resource(
    suggestion: Suggestion, entry: FormularyEntry, patient_id: str
) -> dict[str, Any]:
    """A draft FHIR R4 resource for the suggestion: ServiceRequest or MedicationRequest."""
    subject = {"reference": f"Patient/{patient_id}"}
    if suggestion.kind == "lab":
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
    if suggestion.note:
        resource["note"] = [{"text": suggestion.note}]
    return resource


def _suggestions(
    finding: Finding, content: Content, patient_id: str, new_uuid: UuidFactory
) -> list[dict[str, Any]]:
    built = []
    for suggestion in finding.suggestions:
        table = (
            content.formulary.lab_orders
            if suggestion.kind == "lab"
            else content.formulary.medications
        )
        entry = table[suggestion.key]
        if entry.code is None:
            continue  # the site has not configured this product: never invent a code
        built.append(
            {
                "label": entry.label,
                "uuid": new_uuid(),
                "actions": [
                    {
                        "type": "create",
                        "description": entry.label,
                        "resource": suggested_resource(suggestion, entry, patient_id),
                    }
                ],
            }
        )
    return built


def render_texts(finding: Finding, content: Content) -> tuple[str, str]:
    """The finding's summary and detail, rendered strictly from the topic's templates (notes
    included); a failing template raises ``TemplateFailure`` naming it."""
    topic = content.topics[finding.topic]
    values = _template_values(finding, topic)
    summary = _rendered(
        topic.summaries.get(finding.indicator), values, f"summary.{finding.indicator}"
    )
    return summary, _rendered(topic.detail, values, "detail")


def render_card(
    finding: Finding,
    content: Content,
    patient_id: str,
    new_uuid: UuidFactory = _new_uuid,
    *,
    topic_url: str | None = None,
) -> dict[str, Any]:
    """One card; a content template that fails at run time still yields a safe card.

    ``topic_url`` (the topic's page) becomes ``source.url``; the card's ``extension`` names the
    content version it was rendered from."""
    topic = content.topics[finding.topic]
    try:
        summary_source, detail_source = render_texts(finding, content)
        summary = _summary(summary_source, finding.topic)
        detail = _tidy_markdown(detail_source)
    except TemplateFailure as exc:
        _log.error(
            "card.render_failed",
            topic=finding.topic,
            template=exc.template,
            error=type(exc.error).__name__,
        )
        summary = f"{topic.topic.display} ({finding.indicator}): see details"
        detail = results_table(finding.rows) or topic.topic.display
    primary = content.sources[topic.topic.sources[0]]
    source: dict[str, Any] = {
        "label": primary.label,
        "topic": {"system": TOPIC_SYSTEM, "code": finding.topic, "display": topic.topic.display},
    }
    if primary.url:
        source["url"] = primary.url
    if topic_url:
        source["url"] = topic_url
    settings = content.settings
    reasons = topic.topic.override_reasons or settings.default_override_reasons
    card: dict[str, Any] = {
        "uuid": new_uuid(),
        "summary": summary,
        "indicator": finding.indicator,
        "detail": f"{detail}\n\n{_sources_line(topic, content)}",
        "source": source,
        "overrideReasons": [
            {"system": settings.override_reason_system, "code": r.code, "display": r.display}
            for r in reasons
        ],
    }
    suggestions = _suggestions(finding, content, patient_id, new_uuid)
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "any"
    if topic.topic.links:
        card["links"] = [
            {"label": link.label, "url": link.url, "type": "absolute"} for link in topic.topic.links
        ]
    card["extension"] = {CONTENT_EXTENSION: content.governance.version.as_dict()}
    return card


def topic_of(card: Mapping[str, Any]) -> str:
    return str(card["source"]["topic"]["code"])
