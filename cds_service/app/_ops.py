"""Operations routes: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from .. import metrics
from ..pipeline import CdsService
from ..settings import AuthMode
from ._responses import json_response


def ops_router(
    service: CdsService, *, auth_off: bool, ready_check: Callable[[], bool] | None
) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @router.get("/readyz")
    async def readyz() -> Response:
        ready = ready_check() if ready_check else True
        body: dict[str, Any] = {
            "status": "ready" if ready else "not-ready",
            "content": str(service.content.directory),
            "auth": AuthMode.OFF.value if auth_off else AuthMode.JWT.value,
        }
        if auth_off:
            body["warning"] = "authentication is off: development only"
        return json_response(body, 200 if ready else 503)

    @router.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router
