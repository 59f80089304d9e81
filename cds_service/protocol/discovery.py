"""The three services this CDS service offers and their targeted prefetch templates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..content import Content

# Discovery's ``extension`` keys (CDS Hooks 2.0.1 extensions are namespaced JSON members).
CONTENT_EXTENSION = "cds-service.content"
TOPICS_EXTENSION = "cds-service.topics"
TOPIC_PAGE_PATH = "/cds-services/topics/{code}"


def topic_page_url(public_base_url: str, code: str) -> str:
    """The absolute URL of a topic's page, as discovery lists it and cards link to it."""
    return public_base_url.rstrip("/") + TOPIC_PAGE_PATH.format(code=code)


@dataclass(frozen=True, slots=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str


SERVICES: dict[str, ServiceDefinition] = {
    s.id: s
    for s in (
        ServiceDefinition(
            "mg-patient-view",
            "patient-view",
            "Magnesium safety: chart review",
            "When a chart opens: flags low serum magnesium by severity with its treatment, "
            "potassium or calcium that will not correct until magnesium is repleted, low "
            "magnesium with digoxin, a falling magnesium or a missed magnesium check on "
            "tacrolimus or cyclosporine.",
        ),
        ServiceDefinition(
            "mg-order-select",
            "order-select",
            "Magnesium safety: while ordering",
            "While a medication is chosen: magnesium/aluminium antacids with tacrolimus or "
            "mycophenolate, oral magnesium that needs spacing, magnesium-wasting drugs for a "
            "patient on a calcineurin inhibitor or with low magnesium, and low magnesium "
            "behind a potassium or calcium order.",
        ),
        ServiceDefinition(
            "mg-order-sign",
            "order-sign",
            "Magnesium safety: before signing",
            "Before orders are signed: the same checks as while ordering, over every order "
            "being signed.",
        ),
    )
}


def prefetch_templates(content: Content) -> dict[str, str]:
    """Targeted queries in the CDS Hooks 2.0.1 subset; dates and statuses are filtered locally."""
    codes = ",".join(
        f"{analyte.system}|{code}"
        for analyte in content.analytes.values()
        for code in analyte.codes
    )
    statuses = ",".join(content.settings.active_medication_statuses)
    return {
        "patient": "Patient/{{context.patientId}}",
        "observations": (
            f"Observation?patient={{{{context.patientId}}}}&code={codes}&_sort=-date&_count=1000"
        ),
        "medicationRequests": (
            f"MedicationRequest?patient={{{{context.patientId}}}}&status={statuses}"
        ),
        "medicationStatements": "MedicationStatement?patient={{context.patientId}}&status=active",
    }


def discovery_document(content: Content, *, public_base_url: str = "") -> dict[str, Any]:
    templates = prefetch_templates(content)
    extension = {
        CONTENT_EXTENSION: content.governance.version.as_dict(),
        TOPICS_EXTENSION: {
            code: topic_page_url(public_base_url, code) for code in sorted(content.topics)
        },
    }
    return {
        "services": [
            {
                "id": service.id,
                "hook": service.hook,
                "title": service.title,
                "description": service.description,
                "prefetch": templates,
                "extension": extension,
            }
            for service in SERVICES.values()
        ]
    }
