"""The three services this CDS service offers and their targeted prefetch templates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..content import Content

# Each service definition's ``extension``: what a client or an operator may want to know about
# this deployment. One key per fact, namespaced by who defines it.
VERSION_EXTENSION = "cds-service.version"


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


def service_extension(content: Content) -> dict[str, Any]:
    """The ``extension`` object of every service definition."""
    return {VERSION_EXTENSION: __version__}


def discovery_document(content: Content) -> dict[str, Any]:
    templates = prefetch_templates(content)
    return {
        "services": [
            {
                "id": service.id,
                "hook": service.hook,
                "title": service.title,
                "description": service.description,
                "prefetch": templates,
                "extension": service_extension(content),
            }
            for service in SERVICES.values()
        ]
    }
