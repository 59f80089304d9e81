"""The HTTP layer: routes, limits, CORS, trust, and errors as OperationOutcomes."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import metrics
from ._logging import configure_logging, get_logger
from .pipeline import BlockingWorkRequired, CdsService
from .protocol import Issue, ServiceError, decode_hook_body, decode_json, operation_outcome
from .settings import AuthMode, Settings
from .trust import AuthenticationFailed, VerifiedCaller

_log = get_logger(__name__)

# Verifies the Authorization header for the exact URL called; raises on a bad token.
Authenticator = Callable[[str | None, str], Any]

# As the verifier logs it: a jti is short in practice, but the client chooses it.
_LOGGED_JTI_CHARS = 128
_UNAUTHORIZED = orjson.dumps(operation_outcome([Issue("authentication required", "login")]))


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _outcome(status: int, diagnostics: str, code: str) -> Response:
    return _json(operation_outcome([Issue(diagnostics, code)]), status)


class _TooLarge(ServiceError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, [Issue(f"request body is larger than {limit} bytes", "too-costly")])


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


# A request's objects die by reference counting when it ends. With a first generation this
# large, a collection runs every few requests instead of several times inside each one, where
# it would scan (and promote) the request's live objects; bench/ reports collections per request.
_FIRST_GENERATION_THRESHOLD = 50_000


def settle_heap() -> None:
    """Keep the cyclic GC off the hot path.

    Content, templates and lookup tables live for the whole process: freezing them after
    start-up keeps every later collection small, and a large first-generation threshold keeps
    collections from running inside a request (each request allocates a few thousand objects).
    """
    gc.collect()
    gc.freeze()
    _, *older = gc.get_threshold()
    gc.set_threshold(_FIRST_GENERATION_THRESHOLD, *older)


def create_app(
    service: CdsService,
    *,
    authenticator: Authenticator | None = None,
    ready_check: Callable[[], bool] | None = None,
    on_shutdown: Callable[[], None] | None = None,
) -> FastAPI:
    """Build the app around a ready ``CdsService``; ``authenticator`` None means auth is off."""
    settings: Settings = service.settings
    auth_off = authenticator is None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if auth_off:
            _log.warning(
                "auth.off",
                detail="CDS_AUTH_MODE=off: requests are not authenticated; development only",
            )
        settle_heap()
        yield
        if on_shutdown is not None:
            on_shutdown()

    app = FastAPI(
        title="Magnesium safety CDS Hooks service",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    # The default follows what this app does: no origin when it checks tokens, "*" when not.
    cors_origins = settings.cors_origins
    if cors_origins is None:
        cors_origins = ["*"] if auth_off else []
    app.add_middleware(
        CORSMiddleware,
        allow_origins=cors_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
    )

    async def authenticate(request: Request) -> Response | None:
        # First thing in every route: this request's log lines carry nothing from another one.
        structlog.contextvars.clear_contextvars()
        if authenticator is None:
            return None
        audience = settings.public_base_url + request.url.path
        try:
            # A jku key-set fetch can block: keep it off the event loop.
            caller = await run_in_threadpool(
                authenticator, request.headers.get("authorization"), audience
            )
        except AuthenticationFailed:  # the verifier logs the reason; the client gets no detail
            return Response(
                _UNAUTHORIZED,
                status_code=401,
                media_type="application/json",
                headers={"WWW-Authenticate": "Bearer"},
            )
        except Exception as exc:  # e.g. the replay cache's database is down: not the client's fault
            _log.error("auth.unavailable", error=type(exc).__name__)
            return _outcome(503, "token verification is unavailable", "transient")
        if isinstance(caller, VerifiedCaller):
            # run_in_threadpool copies the context, so the pipeline's lines (hook.evaluated,
            # feedback.stored) name the caller and the token they were made for.
            structlog.contextvars.bind_contextvars(
                iss=caller.iss, jti=caller.jti[:_LOGGED_JTI_CHARS]
            )
        return None

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> Response:
        return _json(exc.outcome(), exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
        return _outcome(exc.status_code, str(exc.detail), code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        return _outcome(400, "invalid request", "invalid")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> Response:
        _log.error("request.failed", error=type(exc).__name__)
        return _outcome(500, "internal error", "exception")

    @app.get("/cds-services")
    async def discovery(request: Request) -> Response:
        if denied := await authenticate(request):
            return denied
        return _json(service.discovery)

    async def hook(request: Request) -> Response:
        service_id: str = request.path_params["service_id"]
        if denied := await authenticate(request):
            return denied
        started = time.perf_counter()
        status = 200
        try:
            body = await _read_body(request, settings.max_body_bytes)
            payload = decode_hook_body(body)
            try:
                # Pure CPU when the prefetch is complete: run it here rather than pay for a
                # thread hand-off and GIL contention with the event loop.
                result = service.hook(service_id, payload, inline=True)
            except BlockingWorkRequired:
                result = await run_in_threadpool(service.hook, service_id, payload)
            return _json(result.response)
        except ServiceError as exc:
            status = exc.status
            raise
        finally:
            if service_id in service.discovery_ids:
                metrics.REQUEST_LATENCY.labels(service_id).observe(time.perf_counter() - started)
                metrics.RESPONSES.labels(service_id, str(status)).inc()

    # A plain Starlette route: the hot path needs no FastAPI parameter handling.
    app.add_route("/cds-services/{service_id}", hook, methods=["POST"])

    @app.post("/cds-services/{service_id}/feedback")
    async def feedback(service_id: str, request: Request) -> Response:
        if denied := await authenticate(request):
            return denied
        body = await _read_body(request, settings.max_body_bytes)
        payload = decode_json(body)
        return _json(await run_in_threadpool(service.feedback, service_id, payload))

    @app.get("/healthz")
    async def healthz() -> Response:
        return _json({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> Response:
        ready = ready_check() if ready_check else True
        body: dict[str, Any] = {
            "status": "ready" if ready else "not-ready",
            "content": str(service.content.directory),
            "auth": AuthMode.OFF.value if auth_off else AuthMode.JWT.value,
        }
        if auth_off:
            body["warning"] = "authentication is off: development only"
        return _json(body, 200 if ready else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app


__all__ = ["Authenticator", "configure_logging", "create_app"]
