"""Gathering: a hook call's prefetch, FHIR fallback, referenced Medications and draft orders."""

from ._client import FhirClient, FhirFetchError, FhirTimeoutError, RequestsFhirClient
from ._gather import GatheredData, gather
from ._templates import render_template

__all__ = [
    "FhirClient",
    "FhirFetchError",
    "FhirTimeoutError",
    "GatheredData",
    "RequestsFhirClient",
    "gather",
    "render_template",
]
