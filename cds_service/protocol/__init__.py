"""CDS Hooks protocol: the request envelope, the FHIR resources it carries, discovery, and
client-facing errors."""

from ._decode import decode_hook_body
from ._resources import (
    BundleEntry,
    BundleLink,
    CodeableConcept,
    Coding,
    EntrySearch,
    Ingredient,
    OutcomeIssue,
    Period,
    Quantity,
    Reference,
    Resource,
    Subject,
    as_resource,
)
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
    "BundleEntry",
    "BundleLink",
    "CodeableConcept",
    "Coding",
    "DataUnavailable",
    "EntrySearch",
    "FhirAuthorization",
    "HookRequest",
    "Ingredient",
    "Issue",
    "OutcomeIssue",
    "Period",
    "Quantity",
    "Reference",
    "Resource",
    "ServiceDefinition",
    "ServiceError",
    "Subject",
    "as_resource",
    "decode_hook_body",
    "decode_json",
    "discovery_document",
    "operation_outcome",
    "parse_hook_request",
    "prefetch_templates",
]
