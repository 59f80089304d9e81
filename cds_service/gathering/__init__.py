"""Gathering: a hook call's prefetch, FHIR fallback, referenced Medications and draft orders."""

from ._client import (
    FhirClient,
    FhirFetchError,
    FhirRefusedError,
    FhirStatusError,
    FhirTimeoutError,
)
from ._gather import GatheredData, fetch_scheduler, gather
from ._http import HttpFhirClient, Resolver, SystemResolver
from ._memory import Learnt, ServerMemory, server_key
from ._policy import OPEN, FetchPolicy, FetchRefused, non_public_reason, policy_for
from ._server import DEFAULT_SERVER_OPTIONS, DISPENSABLE_RESOURCES, FhirServerOptions
from ._templates import render_template

# The former name of the default client, kept so existing wiring keeps working.
RequestsFhirClient = HttpFhirClient

__all__ = [
    "DEFAULT_SERVER_OPTIONS",
    "DISPENSABLE_RESOURCES",
    "OPEN",
    "FetchPolicy",
    "FetchRefused",
    "FhirClient",
    "FhirFetchError",
    "FhirRefusedError",
    "FhirServerOptions",
    "FhirStatusError",
    "FhirTimeoutError",
    "GatheredData",
    "HttpFhirClient",
    "Learnt",
    "RequestsFhirClient",
    "Resolver",
    "ServerMemory",
    "SystemResolver",
    "fetch_scheduler",
    "gather",
    "non_public_reason",
    "policy_for",
    "render_template",
    "server_key",
]
