"""``/openapi.json``: the HTTP API described, the plain-Starlette hook route included.

FastAPI only describes its own routes, and the hook route is a plain Starlette route (the hot
path skips FastAPI's parameter handling), so the CDS Hooks operations are written out here, with
the request and response shapes of ``_api_models``. Routes this module does not know (the demo's,
when it is mounted) are described by FastAPI. Built on the first request, then cached; nothing
here is imported at start-up.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic.json_schema import models_json_schema

from .. import __version__
from ..protocol import SERVICES
from ._api_models import DOCUMENTED

TITLE = "Magnesium safety CDS Hooks service"
DESCRIPTION = (
    "A CDS Hooks 2.0.1 service that reads a patient's FHIR R4 labs and medications and answers "
    "with cards about magnesium. Every error is a FHIR OperationOutcome."
)
_SECURITY_SCHEME = "cdsHooksJwt"
_SCHEMAS = "#/components/schemas/"

_OUTCOME_ERRORS = {
    "400": "the request is malformed; the issue names the field",
    "401": "authentication required: a missing or refused token (no detail is given)",
    "404": "no such service",
    "412": "the data the service needs could not be obtained (prefetch or the FHIR server)",
    "413": "the request body is larger than CDS_MAX_BODY_MB",
    "503": "the service cannot answer now (e.g. its database is down); retry later",
}


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _SCHEMAS + schema}}}


def _errors(*statuses: str) -> dict[str, Any]:
    return {
        status: {"description": _OUTCOME_ERRORS[status], "content": _json("OperationOutcome")}
        for status in statuses
    }


def _service_id(services: list[str]) -> dict[str, Any]:
    return {
        "name": "service_id",
        "in": "path",
        "required": True,
        "description": "a service id from discovery",
        "schema": {"type": "string", "enum": services},
    }


def _hook_operations(*, auth_off: bool) -> dict[str, dict[str, Any]]:
    """Discovery, the hook calls and feedback."""
    services = list(SERVICES)
    secured: dict[str, Any] = {} if auth_off else {"security": [{_SECURITY_SCHEME: []}]}
    return {
        "/cds-services": {
            "get": {
                "tags": ["CDS Hooks"],
                "summary": "Discovery: the services, their hooks and prefetch templates",
                "operationId": "discovery",
                **secured,
                "responses": {
                    "200": {"description": "the services", "content": _json("Discovery")},
                    **_errors("401"),
                },
            }
        },
        "/cds-services/{service_id}": {
            "post": {
                "tags": ["CDS Hooks"],
                "summary": "Call a service: the cards for this hook",
                "description": (
                    "Prefetch first; a key that is absent is fetched from fhirServer with the "
                    "fhirAuthorization token, under one deadline (CDS_FHIR_TIMEOUT_S). The "
                    "options a service offers in discovery (its extension's "
                    "cds-service.configuration-options) may be set per call in "
                    "extension.cds-service.configuration; a bad value is a 400 naming it."
                ),
                "operationId": "callService",
                **secured,
                "parameters": [_service_id(services)],
                "requestBody": {"required": True, "content": _json("HookRequest")},
                "responses": {
                    "200": {
                        "description": "the cards (often none)",
                        "content": _json("CdsResponse"),
                    },
                    **_errors("400", "401", "404", "412", "413", "503"),
                },
            }
        },
        "/cds-services/{service_id}/feedback": {
            "post": {
                "tags": ["CDS Hooks"],
                "summary": "Feedback: which cards were accepted or overridden",
                "description": "Answered 200 once every item is stored; a repeat is stored once.",
                "operationId": "feedback",
                **secured,
                "parameters": [_service_id(services)],
                "requestBody": {"required": True, "content": _json("FeedbackBody")},
                "responses": {
                    "200": {
                        "description": "every item is stored",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_errors("400", "401", "404", "413", "503"),
                },
            }
        },
    }


def _operations_routes() -> dict[str, dict[str, Any]]:
    """Liveness, readiness, metrics and this description."""
    return {
        "/healthz": {
            "get": {
                "tags": ["Operations"],
                "summary": "Liveness: the process answers",
                "operationId": "healthz",
                "responses": {"200": {"description": "alive", "content": _json("Health")}},
            }
        },
        "/readyz": {
            "get": {
                "tags": ["Operations"],
                "summary": "Readiness, with the version and each check's reason",
                "operationId": "readyz",
                "responses": {
                    "200": {"description": "ready", "content": _json("Readiness")},
                    "503": {
                        "description": "not ready: a check says why",
                        "content": _json("Readiness"),
                    },
                },
            }
        },
        "/metrics": {
            "get": {
                "tags": ["Operations"],
                "summary": "Prometheus metrics of this worker (cds_build_info has the version)",
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "the Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "tags": ["Documentation"],
                "summary": "This description (OpenAPI 3.1)",
                "operationId": "openapi",
                "responses": {
                    "200": {
                        "description": "the OpenAPI document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/docs": {
            "get": {
                "tags": ["Documentation"],
                "summary": "This description as a web page (no scripts, nothing fetched)",
                "operationId": "docs",
                "responses": {
                    "200": {
                        "description": "HTML",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }


def _operations(*, auth_off: bool) -> dict[str, dict[str, Any]]:
    return {**_hook_operations(auth_off=auth_off), **_operations_routes()}


def openapi_document(app: FastAPI, *, auth_off: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 description of every route ``app`` serves."""
    operations = _operations(auth_off=auth_off)
    others = [
        route
        for route in app.routes
        if isinstance(route, APIRoute) and route.include_in_schema and route.path not in operations
    ]
    document = get_openapi(title=TITLE, version=__version__, description=DESCRIPTION, routes=others)
    _, definitions = models_json_schema(
        [(model, "validation") for model in DOCUMENTED], ref_template=_SCHEMAS + "{model}"
    )
    components = document.setdefault("components", {})
    components.setdefault("schemas", {}).update(definitions.get("$defs", {}))
    if not auth_off:
        components["securitySchemes"] = {
            _SECURITY_SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": (
                    "A JWT signed by a client in the trust file (CDS_TRUST_FILE), its aud the "
                    "exact URL called; see docs/security.md"
                ),
            }
        }
    document["paths"] = {**operations, **document.get("paths", {})}
    return document
