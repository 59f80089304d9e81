"""The CDS Hooks 2.0.1 request envelope, validated strictly at the top and tolerant inside."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import BadRequest

HOOK_REQUIRED_CONTEXT: dict[str, tuple[str, ...]] = {
    "patient-view": ("userId", "patientId"),
    "order-select": ("userId", "patientId", "selections", "draftOrders"),
    "order-sign": ("userId", "patientId", "draftOrders"),
}


class FhirAuthorization(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    access_token: str
    token_type: str = "Bearer"
    expires_in: int | None = None
    scope: str | None = None
    subject: str | None = None


class HookRequest(BaseModel):
    """A hook call. ``context`` and ``prefetch`` stay raw JSON: the data layer decodes them."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    hook: str = Field(min_length=1)
    hook_instance: str = Field(alias="hookInstance", min_length=1)
    fhir_server: str | None = Field(default=None, alias="fhirServer")
    fhir_authorization: FhirAuthorization | None = Field(default=None, alias="fhirAuthorization")
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None
    extension: dict[str, Any] | None = None
    """Kept for the configuration it may carry (``read_configuration``); its other members are
    ignored, and so is an ``extension`` that is not an object, as before options existed."""

    @field_validator("extension", mode="before")
    @classmethod
    def _object_or_nothing(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else None

    @field_validator("fhir_server")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("fhirServer must be an http(s) URL")
        return value.rstrip("/") if value else value

    @property
    def patient_id(self) -> str:
        return str(self.context["patientId"])


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


# orjson refuses documents nested deeper than this, so no client can make us recurse further.
MAX_JSON_DEPTH = 1024


def decode_json(body: bytes) -> Any:
    """Decode a request body once; invalid JSON and nesting beyond ``MAX_JSON_DEPTH`` are 400s."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise BadRequest(
                f"request JSON is nested deeper than {MAX_JSON_DEPTH} levels"
            ) from None
        raise BadRequest(f"request body is not valid JSON: {exc.msg}") from None


def parse_hook_request(payload: Any, *, expected_hook: str) -> HookRequest:
    """Validate the envelope and the hook's required context; ``BadRequest`` names the field."""
    if not isinstance(payload, dict):
        raise BadRequest("request body must be a JSON object")
    try:
        request = HookRequest.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise BadRequest(
            f"{_location(first['loc']) or 'request'}: {first['msg']}", _location(first["loc"])
        ) from None
    if request.hook != expected_hook:
        raise BadRequest(
            f"hook '{request.hook}' does not match this service, which handles '{expected_hook}'",
            "hook",
        )
    for name in HOOK_REQUIRED_CONTEXT.get(expected_hook, ()):
        value = request.context.get(name)
        if value is None or value == "":
            raise BadRequest(f"context.{name} is required for {expected_hook}", f"context.{name}")
    if not isinstance(request.context["patientId"], str):
        raise BadRequest("context.patientId must be a string", "context.patientId")
    if "selections" in HOOK_REQUIRED_CONTEXT[expected_hook] and not (
        isinstance(request.context["selections"], list)
        and all(isinstance(item, str) for item in request.context["selections"])
    ):
        raise BadRequest("context.selections must be an array of strings", "context.selections")
    drafts = request.context.get("draftOrders")
    if "draftOrders" in HOOK_REQUIRED_CONTEXT[expected_hook] and not isinstance(drafts, dict):
        raise BadRequest("context.draftOrders must be a FHIR Bundle", "context.draftOrders")
    return request
