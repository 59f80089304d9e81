"""Operations routes: liveness, readiness, Prometheus metrics, and the API's description."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from .. import __version__, metrics
from ..pipeline import CdsService
from ..settings import AuthMode
from ._responses import json_response

# None when the database answers, else why it does not.
DatabaseCheck = Callable[[], str | None]
AUTH_OFF_WARNING = "authentication is off: development only"


def _check(problem: str | None, fine: str) -> dict[str, Any]:
    return {"ok": problem is None, "reason": problem or fine}


def readiness(
    service: CdsService, *, auth_off: bool, database_check: DatabaseCheck | None
) -> tuple[dict[str, Any], int]:
    """The readiness body: each check with its reason; 503 unless every check passes."""
    content = service.content
    checks = {
        "content": _check(None, f"{len(content.topics)} topics loaded from {content.directory}"),
        "database": _check(database_check() if database_check else None, "the database answers"),
        "auth": _check(
            None,
            "off: requests are not authenticated (development only)"
            if auth_off
            else "jwt: every request needs a token from a trusted client",
        ),
    }
    ready = all(check["ok"] for check in checks.values())
    body: dict[str, Any] = {
        "status": "ready" if ready else "not-ready",
        "version": __version__,
        "checks": checks,
        "content": str(content.directory),
        "content_version": content.governance.version.as_dict(),
        "auth": AuthMode.OFF.value if auth_off else AuthMode.JWT.value,
    }
    if auth_off:
        body["warning"] = AUTH_OFF_WARNING
    return body, 200 if ready else 503


def ops_router(
    service: CdsService, *, auth_off: bool, database_check: DatabaseCheck | None
) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @router.get("/readyz")
    async def readyz() -> Response:
        body, status = readiness(service, auth_off=auth_off, database_check=database_check)
        return json_response(body, status)

    @router.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @router.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> Response:
        return json_response(request.app.openapi())

    @router.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> Response:
        from ._docs import CONTENT_SECURITY_POLICY, render_docs

        return HTMLResponse(
            render_docs(request.app.openapi()),
            headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY},
        )

    return router
