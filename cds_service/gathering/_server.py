"""How to talk to one client's FHIR server: what a profile says about it."""

from __future__ import annotations

from dataclasses import dataclass

# Resource types the rules can do without: a FHIR server that lacks one gives "no data" for it
# (traced and counted), never a 412. A server without MedicationStatement (Oracle Health's R4
# API lists none) still has its patients' orders as MedicationRequests; without Condition,
# kidney failure is judged from the eGFR alone; without Medication, a medicationReference is
# read by its display text. Patient, Observation and MedicationRequest are not among them: a
# card cannot be decided without them.
DISPENSABLE_RESOURCES = frozenset({"MedicationStatement", "Condition", "Medication"})


@dataclass(frozen=True, slots=True)
class FhirServerOptions:
    """What the fallback searches send to a client's FHIR server.

    ``page_size`` replaces the ``_count`` of fallback searches, and is added to those without
    one (None: the template's own); ``sort`` False drops ``_sort`` (results are then sorted
    locally, newest first for ``-date``); ``skip_resources`` are resource types the server does
    not have: their keys are "no data" without a request. Only ``DISPENSABLE_RESOURCES`` may be
    skipped: a profile that names another type is a configuration error, and gathering fetches
    such a type anyway (with a warning) rather than lose data a card depends on.
    """

    page_size: int | None = None
    sort: bool = True
    skip_resources: frozenset[str] = frozenset()


DEFAULT_SERVER_OPTIONS = FhirServerOptions()
