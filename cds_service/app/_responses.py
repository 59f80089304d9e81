"""JSON responses, OperationOutcome errors, and the request-body reader with its size cap."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..protocol import Issue, ServiceError, operation_outcome


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def outcome_response(status: int, diagnostics: str, code: str) -> Response:
    return json_response(operation_outcome([Issue(diagnostics, code)]), status)


class BodyTooLarge(ServiceError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, [Issue(f"request body is larger than {limit} bytes", "too-costly")])


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)
