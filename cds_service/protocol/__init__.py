"""CDS Hooks protocol: the request envelope, the FHIR resources it carries, discovery, and
client-facing errors."""

from ._decode import decode_hook_body
from ._resources import (
    BundleEntry,
    BundleLink,
    CodeableConcept,
    Coding,
    Dosage,
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
from .discovery import (
    CONTENT_EXTENSION,
    OPTIONAL_PREFETCH,
    SERVICES,
    TOPICS_EXTENSION,
    ServiceDefinition,
    discovery_document,
    prefetch_templates,
    topic_page_url,
)
from .errors import BadRequest, DataUnavailable, Issue, ServiceError, operation_outcome
from .request import (
    HOOK_REQUIRED_CONTEXT,
    FhirAuthorization,
    HookRequest,
    decode_json,
    parse_hook_request,
)

__all__ = [
    "CONTENT_EXTENSION",
    "HOOK_REQUIRED_CONTEXT",
    "OPTIONAL_PREFETCH",
    "SERVICES",
    "TOPICS_EXTENSION",
    "BadRequest",
    "BundleEntry",
    "BundleLink",
    "CodeableConcept",
    "Coding",
    "DataUnavailable",
    "Dosage",
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
    "topic_page_url",
]
