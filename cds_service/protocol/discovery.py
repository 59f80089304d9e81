"""The three services this CDS service offers and their targeted prefetch templates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..content import Content, TopicSpec
from ._configuration import CONFIGURATION_OPTIONS_EXTENSION, configuration_options

# Discovery's ``extension`` keys (CDS Hooks 2.0.1 extensions are namespaced JSON members).
CONTENT_EXTENSION = "cds-service.content"
TOPICS_EXTENSION = "cds-service.topics"
TOPIC_PAGE_PATH = "/cds-services/topics/{code}"


def topic_page_url(public_base_url: str, code: str) -> str:
    """The absolute URL of a topic's page, as discovery lists it and cards link to it."""
    return public_base_url.rstrip("/") + TOPIC_PAGE_PATH.format(code=code)


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
            "When a chart opens: low or high serum magnesium by severity with the treatment its "
            "context allows, potassium or calcium that may not correct while magnesium is low, "
            "low magnesium with digoxin, a falling magnesium or a missed magnesium check on "
            "tacrolimus or cyclosporine.",
        ),
        ServiceDefinition(
            "mg-order-select",
            "order-select",
            "Magnesium safety: while ordering",
            "While a medication is chosen: magnesium/aluminium antacids with tacrolimus or "
            "mycophenolate, oral magnesium and the drugs it binds, magnesium-wasting drugs for a "
            "patient on a calcineurin inhibitor or with low magnesium, a new calcineurin "
            "inhibitor without a magnesium check, and low magnesium behind a potassium or "
            "calcium order.",
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

# Prefetch keys the rules can do without: unavailable data there is "unknown", never a 412.
OPTIONAL_PREFETCH = frozenset({"conditions"})
# Completed and stopped orders are evidence of an earlier CNI; only active ones make a patient
# "on" a drug (filtered locally).
_HISTORY_STATUSES = ("completed", "stopped")


def prefetch_templates(content: Content) -> dict[str, str]:
    """Targeted queries in the CDS Hooks 2.0.1 subset; dates and statuses are filtered locally."""
    codes = ",".join(
        f"{analyte.system}|{code}"
        for analyte in content.analytes.values()
        for code in analyte.codes
    )
    statuses = ",".join(
        dict.fromkeys([*content.settings.active_medication_statuses, *_HISTORY_STATUSES])
    )
    conditions = ",".join(f"{system}|{code}" for system, code in content.condition_by_code)
    return {
        "patient": "Patient/{{context.patientId}}",
        "observations": (
            f"Observation?patient={{{{context.patientId}}}}&code={codes}&_sort=-date&_count=1000"
        ),
        "medicationRequests": (
            f"MedicationRequest?patient={{{{context.patientId}}}}&status={statuses}"
        ),
        "medicationStatements": "MedicationStatement?patient={{context.patientId}}&status=active",
        "conditions": f"Condition?patient={{{{context.patientId}}}}&code={conditions}",
    }


def service_extension(content: Content, public_base_url: str = "") -> dict[str, Any]:
    """What the ``extension`` object of every service definition shares: the service's
    version, the content's version and fingerprint, and each topic's page."""
    return {
        VERSION_EXTENSION: __version__,
        CONTENT_EXTENSION: content.governance.version.as_dict(),
        TOPICS_EXTENSION: {
            code: topic_page_url(public_base_url, code) for code in sorted(content.topics)
        },
    }


def discovery_document(
    content: Content, specs: Sequence[TopicSpec], *, public_base_url: str = ""
) -> dict[str, Any]:
    """The services, each with its prefetch templates and an ``extension`` holding what
    ``service_extension`` gives plus the configuration options of its hook."""
    templates = prefetch_templates(content)
    extension = service_extension(content, public_base_url)
    services = []
    for service in SERVICES.values():
        topics = [
            spec.title
            for spec in specs
            if service.hook in spec.hooks and content.topics[spec.code].topic.enabled
        ]
        services.append(
            {
                "id": service.id,
                "hook": service.hook,
                "title": service.title,
                "description": f"{service.description} Topics: {'; '.join(topics)}.",
                "prefetch": templates,
                "extension": {
                    **extension,
                    CONFIGURATION_OPTIONS_EXTENSION: [
                        option.as_dict()
                        for option in configuration_options(content, specs, service.hook)
                    ],
                },
            }
        )
    return {"services": services}
