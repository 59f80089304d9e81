"""The demo patients: fixture scenarios with ``"demo": true``, shifted to today."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .._logging import get_logger
from ..scenarios import SCENARIOS_DIR, Scenario, all_scenarios
from ._index import FhirIndex
from ._search import Resource

_log = get_logger(__name__)

SANDBOX_URL = "https://sandbox.cds-hooks.org/"
FHIR_PATH = "/demo/fhir"
HOOKS = ("patient-view", "order-select", "order-sign")
# The CDS Hooks sandbox screen that fires each hook.
SCREENS = {"patient-view": "Patient View", "order-select": "Rx View", "order-sign": "Rx Sign"}


@dataclass(frozen=True, slots=True)
class DemoPatient:
    """One demo scenario: a patient and the sandbox screen that shows its cards."""

    scenario: str
    title: str
    description: str
    patient_id: str
    name: str
    hook: str
    orders: tuple[str, ...]
    """What the draft orders order (for order hooks): what to pick in the sandbox's Rx View."""
    topics: tuple[str, ...]
    """The topics the scenario expects."""
    request: dict[str, Any]

    @property
    def screen(self) -> str:
        return SCREENS.get(self.hook, self.hook)

    def summary(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "title": self.title,
            "description": self.description,
            "patientId": self.patient_id,
            "name": self.name,
            "hook": self.hook,
            "screen": self.screen,
            "orders": list(self.orders),
            "topics": list(self.topics),
        }


def sandbox_url(base_url: str, patient_id: str) -> str:
    """The sandbox, pointed at this service's discovery, the demo FHIR endpoint, a patient."""
    base = base_url.rstrip("/")
    return (
        f"{SANDBOX_URL}?serviceDiscoveryURL={quote(base + '/cds-services', safe='')}"
        f"&fhirServiceUrl={quote(base + FHIR_PATH, safe='')}"
        f"&patientId={quote(patient_id, safe='')}"
    )


def _patient_name(patient: Any) -> str:
    names = patient.get("name") if isinstance(patient, dict) else None
    if not isinstance(names, list) or not names or not isinstance(names[0], dict):
        return ""
    given = names[0].get("given")
    parts = [str(g) for g in given] if isinstance(given, list) else []
    family = names[0].get("family")
    if isinstance(family, str):
        parts.append(family)
    return " ".join(parts)


def _order_names(context: Any) -> tuple[str, ...]:
    drafts = context.get("draftOrders") if isinstance(context, dict) else None
    entries = drafts.get("entry") if isinstance(drafts, dict) else None
    names: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        concept = resource.get("medicationCodeableConcept") or resource.get("code")
        if isinstance(concept, dict):
            codings = concept.get("coding")
            first = codings[0] if isinstance(codings, list) and codings else {}
            text = concept.get("text") or (first.get("display") if isinstance(first, dict) else "")
            if text:
                names.append(str(text))
    return tuple(names)


def prefetch_resources(prefetch: Any) -> Iterator[Resource]:
    """Every resource a prefetch holds: bare resources and the entries of Bundles."""
    if not isinstance(prefetch, dict):
        return
    for value in prefetch.values():
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") != "Bundle":
            yield value
            continue
        entries = value.get("entry")
        for entry in entries if isinstance(entries, list) else []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and resource.get("resourceType") != "OperationOutcome":
                yield resource


class DemoData:
    """The demo patients, their requests, and the FHIR index over their prefetch resources."""

    def __init__(self, patients: Iterable[DemoPatient]) -> None:
        self.patients = list(patients)
        self.index = FhirIndex()
        for patient in self.patients:
            for resource in prefetch_resources(patient.request.get("prefetch")):
                if not self.index.add(resource):  # another type, no id, or an id already held
                    _log.debug(
                        "demo.resource_skipped",
                        scenario=patient.scenario,
                        resource_type=resource.get("resourceType"),
                    )

    @classmethod
    def from_scenarios(cls, scenarios: Iterable[Scenario]) -> DemoData:
        patients = []
        for scenario in scenarios:
            if not scenario.demo:
                continue
            request = scenario.request
            context = request.get("context") if isinstance(request, dict) else None
            prefetch = request.get("prefetch") if isinstance(request, dict) else None
            if not isinstance(context, dict) or not isinstance(context.get("patientId"), str):
                continue
            patient = prefetch.get("patient") if isinstance(prefetch, dict) else None
            patients.append(
                DemoPatient(
                    scenario=scenario.name,
                    title=scenario.title,
                    description=scenario.description,
                    patient_id=context["patientId"],
                    name=_patient_name(patient),
                    hook=str(request.get("hook", "")),
                    orders=_order_names(context),
                    topics=tuple(dict.fromkeys(card.topic for card in scenario.expected)),
                    request=request,
                )
            )
        return cls(patients)

    @classmethod
    def load(cls, directory: Path = SCENARIOS_DIR) -> DemoData:
        """The demo scenarios of ``directory``, dates shifted to today; empty if it is missing."""
        if not directory.is_dir():
            _log.warning("demo.no_scenarios", directory=str(directory))
            return cls([])
        return cls.from_scenarios(all_scenarios(directory))

    def find(self, patient_id: str, hook: str | None = None) -> DemoPatient | None:
        """The patient's scenario for ``hook``, else the patient's first scenario."""
        candidates = [p for p in self.patients if p.patient_id == patient_id]
        for patient in candidates:
            if patient.hook == hook:
                return patient
        return candidates[0] if candidates else None

    def hook_request(self, patient_id: str, hook: str, fhir_server: str) -> dict[str, Any] | None:
        """A CDS Hooks request for the patient as a CDS client would send it, with prefetch.

        None when the patient is unknown, or the hook orders something and the patient's
        scenarios have no draft orders to send.
        """
        if hook not in HOOKS:
            return None
        scenario = self.find(patient_id, hook)
        if scenario is None:
            return None
        source = scenario.request
        context = source.get("context", {})
        new_context: dict[str, Any] = {"userId": context.get("userId", "Practitioner/example")}
        new_context["patientId"] = patient_id
        if "encounterId" in context:
            new_context["encounterId"] = context["encounterId"]
        if hook != "patient-view":
            if "draftOrders" not in context:
                return None
            new_context["draftOrders"] = copy.deepcopy(context["draftOrders"])
        if hook == "order-select":
            selections = context.get("selections") or _draft_ids(context["draftOrders"])
            new_context["selections"] = list(selections)
        request: dict[str, Any] = {
            "hook": hook,
            "hookInstance": str(uuid.uuid4()),
            "fhirServer": fhir_server,
            "context": new_context,
        }
        if "prefetch" in source:
            request["prefetch"] = copy.deepcopy(source["prefetch"])
        return request


def _draft_ids(drafts: Any) -> list[str]:
    entries = drafts.get("entry") if isinstance(drafts, dict) else None
    ids = []
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("id"):
            ids.append(f"{resource.get('resourceType')}/{resource['id']}")
    return ids
