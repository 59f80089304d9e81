"""JSON responses, OperationOutcome errors, and the request-body reader with its size cap."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from .. import metrics
from .._logging import get_logger
from ..protocol import Issue, ServiceError, operation_outcome

_log = get_logger(__name__)

# What a POST body may be labelled as. No Content-Type at all is read as JSON too (HTTP lets a
# recipient assume a type; CDS clients send application/json, the sandbox included).
JSON_MEDIA_TYPES = frozenset({"application/json", "application/fhir+json"})


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def outcome_response(status: int, diagnostics: str, code: str) -> Response:
    return json_response(operation_outcome([Issue(diagnostics, code)]), status)


class BodyTooLarge(ServiceError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, [Issue(f"request body is larger than {limit} bytes", "too-costly")])


class UnsupportedMediaType(ServiceError):
    def __init__(self) -> None:
        super().__init__(
            415,
            [
                Issue(
                    "unsupported Content-Type: send application/json (or application/fhir+json)",
                    "not-supported",
                )
            ],
        )


class ClientAborted(ServiceError):
    """The client disconnected before its body was read: nobody is left to answer.

    Counted as status 499 (the client closed the request) and in ``cds_client_aborts_total``;
    logged as one INFO line, never as an error.
    """

    def __init__(self) -> None:
        super().__init__(499, [Issue("client closed the request", "incomplete")])


def check_content_type(request: Request) -> None:
    """415 for a body labelled as anything but JSON; a missing Content-Type is accepted."""
    content_type = request.headers.get("content-type")
    if content_type is None:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in JSON_MEDIA_TYPES:
        raise UnsupportedMediaType()


async def read_body(request: Request, limit: int, *, route: str = "hook") -> bytes:
    """The whole JSON body: 415 for another media type, 413 as soon as it is known to exceed
    ``limit`` bytes, ``ClientAborted`` when the client goes away before the end."""
    check_content_type(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        metrics.CLIENT_ABORTS.labels(route).inc()
        _log.info("request.client_aborted", route=route, received_bytes=size)
        raise ClientAborted from None
    return b"".join(chunks)
