"""The shapes of the HTTP API as pydantic models, for the OpenAPI description only.

Requests are never validated with these: the hook route decodes its body with the tolerant
msgspec models of ``protocol`` (a plain Starlette route, for speed), so these only describe, for
people and client generators, what CDS Hooks 2.0.1 defines and what this service sends.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Feedback is validated with pydantic models: those describe it, exactly as it is checked.
from ..feedback import Coding, FeedbackBody

_OPEN = ConfigDict(extra="allow")


class FhirAuthorization(BaseModel):
    """A bearer token the service may use to read from ``fhirServer``."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: str
    subject: str
    patient: str | None = None


class HookContext(BaseModel):
    """The hook's context; ``selections`` and ``draftOrders`` for order-select and order-sign."""

    model_config = _OPEN

    userId: str = Field(examples=["Practitioner/example"])
    patientId: str = Field(examples=["mg-harold-jensen"])
    encounterId: str | None = None
    selections: list[str] | None = Field(
        default=None, description="order-select: the draft orders being chosen, as Type/id"
    )
    draftOrders: dict[str, Any] | None = Field(
        default=None, description="order-select and order-sign: a FHIR Bundle of draft orders"
    )


_OPTION_VALUES = "option code → value (true/false, or an integer for max-cards)"


class RequestExtension(BaseModel):
    """The request's ``extension``: the client's configuration options. Codes the service does
    not offer are ignored; a value of the wrong type or out of range is a 400 naming it."""

    model_config = _OPEN

    configuration: dict[str, bool | int] | None = Field(
        default=None,
        alias="cds-service.configuration",
        description=f"{_OPTION_VALUES}; the codes discovery offers for this service",
        examples=[{"max-cards": 2, "info-cards": False, "mg-declining": False}],
    )
    crd_configuration: dict[str, bool | int] | None = Field(
        default=None,
        alias="davinci-crd.configuration",
        description=f"{_OPTION_VALUES}, as Da Vinci CRD clients send it; "
        '"cds-service.configuration" wins for a code sent in both',
    )


class HookRequest(BaseModel):
    """A CDS Hooks 2.0.1 request. Prefetch keys that are absent are fetched from ``fhirServer``."""

    model_config = _OPEN

    hook: Literal["patient-view", "order-select", "order-sign"]
    hookInstance: str = Field(description="a UUID for this hook call")
    fhirServer: str | None = Field(default=None, description="the FHIR server's base URL")
    fhirAuthorization: FhirAuthorization | None = None
    context: HookContext
    prefetch: dict[str, Any] | None = Field(
        default=None,
        description="the discovery document's prefetch keys, each a FHIR resource or Bundle; "
        "null means no data, an OperationOutcome means the data is unavailable (412)",
    )
    extension: RequestExtension | None = None


class Source(BaseModel):
    label: str
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = Field(default=None, description="the card's topic (cards/topics/)")


class Action(BaseModel):
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = Field(default=None, description="a FHIR resource")
    resourceId: list[str] | None = None


class Suggestion(BaseModel):
    label: str
    uuid: str | None = None
    isRecommended: bool | None = None
    actions: list[Action] = []


class Link(BaseModel):
    label: str
    url: str
    type: Literal["absolute", "smart"]
    appContext: str | None = None


class Card(BaseModel):
    uuid: str
    summary: str = Field(max_length=140)
    detail: str | None = Field(default=None, description="GitHub-flavoured Markdown")
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] = []
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] = []
    links: list[Link] = []


class CdsResponse(BaseModel):
    """The hook's answer: at most a few cards, most important first; often none."""

    cards: list[Card]
    systemActions: list[Action] | None = None


class ConfigurationOption(BaseModel):
    """An option a client may set per call (after Da Vinci CRD's configuration-options)."""

    code: str = Field(description="a topic code, max-cards or info-cards")
    type: Literal["boolean", "integer"]
    name: str
    description: str
    default: bool | int = Field(description="the behaviour when the option is not sent")


class ServiceExtension(BaseModel):
    """Facts about this deployment (``cds-service.version``, ``cds-service.content``,
    ``cds-service.topics``) and the options a client may send."""

    model_config = _OPEN

    configuration_options: list[ConfigurationOption] = Field(
        alias="cds-service.configuration-options",
        description="each topic of this service's hook that is enabled and live, then "
        "max-cards and info-cards",
    )


class ServiceDefinition(BaseModel):
    hook: str
    id: str
    title: str
    description: str
    prefetch: dict[str, str] = Field(description="prefetch key → FHIR query template")
    extension: ServiceExtension


class Discovery(BaseModel):
    services: list[ServiceDefinition]


class OperationOutcomeIssue(BaseModel):
    severity: Literal["fatal", "error", "warning", "information"]
    code: str
    diagnostics: str
    expression: list[str] | None = None


class OperationOutcome(BaseModel):
    """Every error: the issue says what is wrong and, for a 400 or 412, where."""

    resourceType: Literal["OperationOutcome"]
    issue: list[OperationOutcomeIssue]


class Health(BaseModel):
    status: Literal["ok"]


class ReadinessCheck(BaseModel):
    ok: bool
    reason: str


class Readiness(BaseModel):
    status: Literal["ready", "not-ready"]
    version: str
    checks: dict[str, ReadinessCheck] = Field(
        description="content, database and auth, each with whether it passes and why"
    )
    content: str = Field(description="the cards/ directory in use")
    auth: Literal["off", "jwt"]
    warning: str | None = None


DOCUMENTED = (
    HookRequest,
    CdsResponse,
    Discovery,
    FeedbackBody,
    OperationOutcome,
    Health,
    Readiness,
)
