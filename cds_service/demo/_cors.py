"""Permissive CORS for the demo FHIR endpoint, ahead of the service's own CORS middleware.

The CDS Hooks sandbox runs in the browser and fetches prefetch from the FHIR server itself, so
``/demo/fhir`` answers every origin (``Access-Control-Allow-Origin: *`` on every response and
preflight) whatever ``CDS_CORS_ORIGINS`` says for the CDS endpoints. A page on the public internet
calling ``localhost`` may also ask for Private Network Access: the demo says yes, on any path.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._data import FHIR_PATH

_ALLOW_METHODS = "GET, HEAD, POST, OPTIONS"  # POST: a search by POST [type]/_search
_DEFAULT_HEADERS = "Accept, Authorization, Content-Type, Prefer"
_MAX_AGE = "600"


class DemoCorsMiddleware:
    def __init__(self, app: ASGIApp, prefix: str = FHIR_PATH) -> None:
        self.app = app
        self.prefix = prefix

    def _is_demo(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        is_demo = self._is_demo(str(scope.get("path", "")))
        preflight = scope["method"] == "OPTIONS" and "access-control-request-method" in headers
        private_network = preflight and "access-control-request-private-network" in headers
        if is_demo and preflight:
            await self._preflight(headers, private_network, send)
            return
        if not is_demo and not private_network:
            await self.app(scope, receive, send)
            return
        if private_network:
            # The service's own CORS middleware refuses Private Network Access preflights; in
            # the demo they are allowed, so it sees an ordinary preflight and the answer says yes.
            scope = dict(scope)
            scope["headers"] = [
                (name, value)
                for name, value in scope["headers"]
                if name.lower() != b"access-control-request-private-network"
            ]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                if is_demo:
                    response_headers["Access-Control-Allow-Origin"] = "*"
                    response_headers["Access-Control-Expose-Headers"] = "Content-Location, Location"
                if private_network:
                    response_headers["Access-Control-Allow-Private-Network"] = "true"
            await send(message)

        await self.app(scope, receive, send_with_cors)

    @staticmethod
    async def _preflight(headers: Headers, private_network: bool, send: Send) -> None:
        requested = headers.get("access-control-request-headers")
        response_headers = [
            (b"access-control-allow-origin", b"*"),
            (b"access-control-allow-methods", _ALLOW_METHODS.encode()),
            (b"access-control-allow-headers", (requested or _DEFAULT_HEADERS).encode("latin-1")),
            (b"access-control-max-age", _MAX_AGE.encode()),
            (b"content-length", b"0"),
        ]
        if private_network:
            response_headers.append((b"access-control-allow-private-network", b"true"))
        await send({"type": "http.response.start", "status": 204, "headers": response_headers})
        await send({"type": "http.response.body", "body": b""})
