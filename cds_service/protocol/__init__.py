"""CDS Hooks protocol: the request envelope, discovery, and client-facing errors."""

from ._decode import decode_hook_body
from .discovery import SERVICES, ServiceDefinition, discovery_document, prefetch_templates
from .errors import BadRequest, DataUnavailable, Issue, ServiceError, operation_outcome
from .request import (
    HOOK_REQUIRED_CONTEXT,
    FhirAuthorization,
    HookRequest,
    decode_json,
    parse_hook_request,
)

__all__ = [
    "HOOK_REQUIRED_CONTEXT",
    "SERVICES",
    "BadRequest",
    "DataUnavailable",
    "FhirAuthorization",
    "HookRequest",
    "Issue",
    "ServiceDefinition",
    "ServiceError",
    "decode_hook_body",
    "decode_json",
    "discovery_document",
    "operation_outcome",
    "parse_hook_request",
    "prefetch_templates",
]
