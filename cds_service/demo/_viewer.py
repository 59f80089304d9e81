"""``/demo/viewer``: a small page that calls the service and renders the cards like a CDS client.

Also ``/demo/patients`` (the demo patients, with their sandbox URLs) and
``/demo/requests/{patientId}/{hook}`` (the request a CDS client would send for that patient,
prefetch included). The page and its scripts are package data in ``static/``; nothing is loaded
from another origin, and the Markdown renderer escapes HTML before it formats anything.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from ._data import HOOKS, DemoData, sandbox_url
from ._fhir import fhir_base, outcome

_STATIC = {
    "viewer.css": "text/css; charset=utf-8",
    "viewer.js": "text/javascript; charset=utf-8",
    "markdown.js": "text/javascript; charset=utf-8",
}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _static_bytes(name: str) -> bytes:
    return resources.files("cds_service.demo").joinpath("static", name).read_bytes()


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def viewer_router(data: DemoData) -> APIRouter:
    """Routes under ``/demo``."""
    router = APIRouter()
    files = {name: _static_bytes(name) for name in _STATIC}
    page = _static_bytes("viewer.html")

    @router.get("", include_in_schema=False)
    @router.get("/", include_in_schema=False)
    async def home() -> Response:
        return RedirectResponse("/demo/viewer")

    @router.get("/viewer")
    async def viewer() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=_SECURITY_HEADERS)

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in files:
            return outcome(404, f"no static file '{name}'", "not-found")
        return Response(files[name], media_type=_STATIC[name], headers=_SECURITY_HEADERS)

    @router.get("/patients")
    async def patients(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return _json(
            {
                "fhirServer": fhir_base(request),
                "patients": [
                    {**p.summary(), "sandboxUrl": sandbox_url(base, p.patient_id)}
                    for p in data.patients
                ],
            }
        )

    @router.get("/requests/{patient_id}/{hook}")
    async def hook_request(patient_id: str, hook: str, request: Request) -> Response:
        if hook not in HOOKS:
            return outcome(404, f"unknown hook '{hook}'", "not-found")
        if data.find(patient_id) is None:
            return outcome(404, f"no demo patient '{patient_id}'", "not-found")
        body = data.hook_request(patient_id, hook, fhir_base(request))
        if body is None:
            return outcome(
                404, f"demo patient '{patient_id}' has no draft orders for {hook}", "not-found"
            )
        return _json(body)

    return router
