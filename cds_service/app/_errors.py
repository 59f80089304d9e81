"""Every error the HTTP layer can raise, answered as an OperationOutcome (never a bare 500)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from .._logging import get_logger
from ..protocol import ServiceError
from ._responses import json_response, outcome_response

_log = get_logger(__name__)
_ISSUE_CODES = {404: "not-found", 405: "not-supported"}


async def _service_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return json_response(exc.outcome(), exc.status)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _ISSUE_CODES.get(exc.status_code, "processing")
    return outcome_response(exc.status_code, str(exc.detail), code)


async def _validation_error(_: Request, exc: Exception) -> Response:
    return outcome_response(400, "invalid request", "invalid")


async def _unexpected(_: Request, exc: Exception) -> Response:
    _log.error("request.failed", error=type(exc).__name__)
    return outcome_response(500, "internal error", "exception")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
