"""Topic pages: ``GET /cds-services/topics`` and ``/cds-services/topics/{code}``, HTML or JSON.

Public like a drug label: a clinician reaches them from a card's ``source.url`` in a browser,
which sends no token, and they hold no patient data. Rendered once, when the app is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..pages import index_html, topic_html, topic_pages
from ..pipeline import CdsService
from ..protocol import Issue, ServiceError, topic_page_url

INDEX_PATH = "/cds-services/topics"
_HTML = "text/html; charset=utf-8"
_JSON = "application/json"
# Pages carry no script and load nothing from elsewhere.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Vary": "Accept",
}


@dataclass(frozen=True, slots=True)
class _Rendered:
    html: bytes
    json: bytes


def wants_json(accept: str | None) -> bool:
    """True when the Accept header ranks JSON above HTML (HTML when it does not say)."""
    if not accept:
        return False
    best = {"html": 0.0, "json": 0.0}
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if media in ("application/json", "application/fhir+json"):
            best["json"] = max(best["json"], quality)
        elif media in ("text/html", "application/xhtml+xml", "text/*", "*/*"):
            # A wildcard accepts HTML, but a client naming JSON explicitly wants JSON.
            weight = quality if media in ("text/html", "application/xhtml+xml") else quality * 0.5
            best["html"] = max(best["html"], weight)
    return best["json"] > 0 and best["json"] >= best["html"]


def topics_router(service: CdsService) -> APIRouter:
    router = APIRouter()
    base = service.settings.public_base_url
    pages = topic_pages(service.content)
    rendered = {
        code: _Rendered(
            topic_html(page, index_href=base + INDEX_PATH).encode(),
            orjson.dumps(page.as_dict(topic_page_url(base, code))),
        )
        for code, page in pages.items()
    }
    index = _Rendered(
        index_html(pages, href=lambda code: topic_page_url(base, code)).encode(),
        orjson.dumps(
            {
                "topics": {
                    code: {"display": page.display, "url": topic_page_url(base, code)}
                    for code, page in pages.items()
                },
                "content": service.content.governance.version.as_dict(),
            }
        ),
    )

    def respond(request: Request, found: _Rendered) -> Response:
        if wants_json(request.headers.get("accept")):
            return Response(found.json, media_type=_JSON, headers=_HEADERS)
        return Response(found.html, media_type=_HTML, headers=_HEADERS)

    @router.get(INDEX_PATH)
    async def topic_index(request: Request) -> Response:
        return respond(request, index)

    @router.get(INDEX_PATH + "/{code}")
    async def topic_page(request: Request) -> Response:
        # The path parameter read from the request: a typed parameter would make FastAPI
        # import its pydantic v1 support at start-up.
        found = rendered.get(request.path_params["code"])
        if found is None:
            raise ServiceError(404, [Issue("no such topic", "not-found")])
        return respond(request, found)

    return router
