"""Gathering: a hook call's prefetch, FHIR fallback, referenced Medications and draft orders."""

from ._client import FhirClient, FhirFetchError, FhirTimeoutError, RequestsFhirClient
from ._gather import GatheredData, NetworkRequired, gather
from ._templates import render_template

__all__ = [
    "FhirClient",
    "FhirFetchError",
    "FhirTimeoutError",
    "GatheredData",
    "NetworkRequired",
    "RequestsFhirClient",
    "gather",
    "render_template",
]
