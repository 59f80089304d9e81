"""The HTTP layer: routes, limits, CORS, trust, and errors as OperationOutcomes.

``create_app`` composes small pieces: the authentication gate (``_auth``), the CDS Hooks routes
(``_hooks``), the operations routes (``_ops``) and the error handlers (``_errors``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from .._logging import configure_logging, get_logger
from ..pipeline import CdsService
from ._auth import Authenticator, Gate
from ._errors import install_error_handlers
from ._heap import settle_heap
from ._hooks import cds_router, hook_route
from ._ops import ops_router

_log = get_logger(__name__)


def create_app(
    service: CdsService,
    *,
    authenticator: Authenticator | None = None,
    ready_check: Callable[[], bool] | None = None,
    on_shutdown: Callable[[], None] | None = None,
) -> FastAPI:
    """Build the app around a ready ``CdsService``; ``authenticator`` None means auth is off."""
    settings = service.settings
    gate = Gate(authenticator, settings.public_base_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if gate.off:
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
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins_for(auth_off=gate.off),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
    )
    install_error_handlers(app)
    app.include_router(cds_router(service, gate))
    app.router.routes.append(hook_route(service, gate))
    app.include_router(ops_router(service, auth_off=gate.off, ready_check=ready_check))
    return app


__all__ = ["Authenticator", "configure_logging", "create_app", "settle_heap"]
