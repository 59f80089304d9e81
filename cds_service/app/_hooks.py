"""The CDS Hooks routes: discovery, hook calls and feedback."""

from __future__ import annotations

import time

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import metrics
from ..blocking import WouldBlock
from ..pipeline import CdsService
from ..protocol import ServiceError, decode_hook_body, decode_json
from ._auth import Gate
from ._responses import json_response, read_body


def hook_route(service: CdsService, gate: Gate) -> Route:
    """``POST /cds-services/{id}``: a plain Starlette route, the hot path needs no FastAPI."""
    limit = service.settings.max_body_bytes

    async def hook(request: Request) -> Response:
        service_id: str = request.path_params["service_id"]
        caller = await gate.check(request)
        if isinstance(caller, Response):
            return caller
        started = time.perf_counter()
        status = 200
        try:
            payload = decode_hook_body(await read_body(request, limit))
            try:
                # Pure CPU when the prefetch is complete: run it here rather than pay for a
                # thread hand-off and GIL contention with the event loop.
                result = service.hook(service_id, payload, caller=caller, inline=True)
            except WouldBlock:
                result = await run_in_threadpool(service.hook, service_id, payload, caller=caller)
            return json_response(result.response)
        except ServiceError as exc:
            status = exc.status
            raise
        finally:
            if service_id in service.discovery_ids:
                metrics.REQUEST_LATENCY.labels(service_id).observe(time.perf_counter() - started)
                metrics.RESPONSES.labels(service_id, str(status)).inc()

    return Route("/cds-services/{service_id}", hook, methods=["POST"])


def cds_router(service: CdsService, gate: Gate) -> APIRouter:
    """Discovery and feedback (the hook call itself is ``hook_route``)."""
    router = APIRouter()
    limit = service.settings.max_body_bytes

    @router.get("/cds-services")
    async def discovery(request: Request) -> Response:
        caller = await gate.check(request)
        if isinstance(caller, Response):
            return caller
        return json_response(service.discovery)

    @router.post("/cds-services/{service_id}/feedback")
    async def feedback(service_id: str, request: Request) -> Response:
        caller = await gate.check(request)
        if isinstance(caller, Response):
            return caller
        payload = decode_json(await read_body(request, limit))
        return json_response(await run_in_threadpool(service.feedback, service_id, payload))

    return router
