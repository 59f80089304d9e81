"""How to talk to one client's FHIR server: what a profile says about it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FhirServerOptions:
    """What the fallback searches send to a client's FHIR server.

    ``page_size`` replaces the ``_count`` of fallback searches (None: the template's own);
    ``sort`` False drops ``_sort`` (results are then sorted locally); ``skip_resources`` are
    resource types the server does not have: their keys are "no data" without a request.
    """

    page_size: int | None = None
    sort: bool = True
    skip_resources: frozenset[str] = frozenset()


DEFAULT_SERVER_OPTIONS = FhirServerOptions()
