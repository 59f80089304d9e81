"""Request authentication: the bearer JWT checked for the exact URL called."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from .._logging import get_logger
from ..protocol import Issue, operation_outcome
from ..trust import AuthenticationFailed, VerifiedCaller
from ._responses import outcome_response

_log = get_logger(__name__)

# Verifies the Authorization header for the exact URL called; raises on a bad token.
Authenticator = Callable[[str | None, str], VerifiedCaller]

# As the verifier logs it: a jti is short in practice, but the client chooses it.
_LOGGED_JTI_CHARS = 128
_UNAUTHORIZED = orjson.dumps(operation_outcome([Issue("authentication required", "login")]))


class Gate:
    """Authenticates each request; ``authenticator`` None means authentication is off."""

    def __init__(self, authenticator: Authenticator | None, public_base_url: str) -> None:
        self.authenticator = authenticator
        self.public_base_url = public_base_url

    @property
    def off(self) -> bool:
        return self.authenticator is None

    async def check(self, request: Request) -> VerifiedCaller | Response | None:
        """The verified caller; None when auth is off; a 401/503 response when refused."""
        # First thing in every route: this request's log lines carry nothing from another one.
        structlog.contextvars.clear_contextvars()
        if self.authenticator is None:
            return None
        audience = self.public_base_url + request.url.path
        try:
            # A jku key-set fetch can block: keep it off the event loop.
            caller = await run_in_threadpool(
                self.authenticator, request.headers.get("authorization"), audience
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
            return outcome_response(503, "token verification is unavailable", "transient")
        # run_in_threadpool copies the context, so the pipeline's lines (hook.evaluated,
        # feedback.stored) name the caller and the token they were made for.
        structlog.contextvars.bind_contextvars(iss=caller.iss, jti=caller.jti[:_LOGGED_JTI_CHARS])
        return caller
