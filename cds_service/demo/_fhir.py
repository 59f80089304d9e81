"""``/demo/fhir``: a read-only FHIR R4 test double over the demo patients.

For the CDS Hooks sandbox and tests: Patient read, searches by patient, code, status, date,
``_count`` (paged with ``Bundle.link`` next), ``_sort``, and ``/metadata``. Unknown search
parameters are ignored as FHIR allows: they are left out of ``Bundle.link`` self and named in an
information ``OperationOutcome`` entry (``search.mode`` outcome). It is not a FHIR server.

A search is ``GET [type]?params``, ``GET [type]/_search?params`` or ``POST [type]/_search`` with
a form-encoded body (what the sandbox tries first for each prefetch): the parameters of the
query string and the body are combined, and the answer is the same Bundle, its links GET URLs.
Searching never writes; every other POST, PUT, PATCH or DELETE is a 405.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from fastapi import APIRouter, Request, Response

from ._data import FHIR_PATH, DemoData
from ._index import TYPES, SearchResult
from ._search import SearchError

FHIR_JSON = "application/fhir+json"
FORM = "application/x-www-form-urlencoded"
_SAFE = "|,:/"
# A form of search parameters is a few hundred bytes; the demo reads no more than this.
MAX_FORM_BYTES = 64 * 1024


def _fhir(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=FHIR_JSON)


def outcome(status: int, diagnostics: str, code: str, severity: str = "error") -> Response:
    return _fhir(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
        },
        status,
    )


def fhir_base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + FHIR_PATH


def capability_statement(base: str) -> dict[str, Any]:
    resources = []
    for name, spec in TYPES.items():
        params = ["_id", "_count", "_sort"]
        if spec.reference_fields:
            params += ["patient", "subject"]
        if spec.code_fields:
            params.append("code")
        params += list(spec.string_tokens) + list(spec.concept_tokens) + sorted(spec.date_params)
        resources.append(
            {
                "type": name,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": [{"name": p, "type": _param_type(p)} for p in params],
            }
        )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": datetime.now(UTC).date().isoformat(),
        "kind": "instance",
        "software": {"name": "cds-service demo FHIR test double"},
        "implementation": {
            "description": (
                "Read-only FHIR R4 test double over the demo scenarios of the magnesium "
                "safety CDS service, for the CDS Hooks sandbox and tests. Not a FHIR server."
            ),
            "url": base,
        },
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{"mode": "server", "resource": resources}],
    }


def _param_type(name: str) -> str:
    if name in ("patient", "subject"):
        return "reference"
    if name in ("_count",):
        return "number"
    if name in ("_sort",):
        return "special"
    if name in ("date", "authoredon", "effective"):
        return "date"
    return "token"


def searchset(base: str, resource_type: str, result: SearchResult) -> dict[str, Any]:
    total = len(result.resources)
    page = result.resources[result.offset : result.offset + result.count]
    query = [(name, value) for name, value in result.used if name != "_offset"]
    if not any(name == "_count" for name, _ in query):
        query.append(("_count", str(result.count)))
    self_query = [*query, ("_offset", str(result.offset))] if result.offset else query
    links = [{"relation": "self", "url": _url(base, resource_type, self_query)}]
    if result.count and result.offset + result.count < total:
        next_query = [*query, ("_offset", str(result.offset + result.count))]
        links.append({"relation": "next", "url": _url(base, resource_type, next_query)})
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
            "resource": resource,
            "search": {"mode": "match"},
        }
        for resource in page
    ]
    if result.ignored:
        entries.append(
            {
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {
                            "severity": "information",
                            "code": "not-supported",
                            "diagnostics": "search parameters ignored by the demo FHIR test "
                            "double: " + ", ".join(result.ignored),
                        }
                    ],
                },
                "search": {"mode": "outcome"},
            }
        )
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return bundle


def _url(base: str, resource_type: str, query: list[tuple[str, str]]) -> str:
    return f"{base}/{resource_type}?{urlencode(query, safe=_SAFE)}"


class _FormError(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


async def form_parameters(request: Request) -> list[tuple[str, str]]:
    """The search parameters of a ``POST _search`` body: form-encoded (415 otherwise; an
    empty body may come without a Content-Type), at most ``MAX_FORM_BYTES`` (413), UTF-8."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise _FormError(
                outcome(413, f"a search form is at most {MAX_FORM_BYTES} bytes", "too-costly")
            )
    if not body and not media:
        return []
    if media != FORM:
        raise _FormError(
            outcome(
                415,
                f"POST _search takes its parameters as {FORM}, not {media or 'no Content-Type'}",
                "not-supported",
            )
        )
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        raise _FormError(outcome(400, "the search form is not UTF-8", "invalid")) from None
    return parse_qsl(text, keep_blank_values=True)


def fhir_router(data: DemoData) -> APIRouter:
    """The routes of the demo FHIR endpoint, to include with the ``/demo/fhir`` prefix."""
    router = APIRouter()
    index = data.index

    @router.get("/metadata")
    async def metadata(request: Request) -> Response:
        return _fhir(capability_statement(fhir_base(request)))

    def answer(resource_type: str, request: Request, form: list[tuple[str, str]]) -> Response:
        if not index.supports(resource_type):
            return outcome(
                404, f"the demo FHIR test double has no {resource_type} resources", "not-supported"
            )
        params = [*parse_qsl(request.url.query, keep_blank_values=True), *form]
        try:
            result = index.search(resource_type, params)
        except SearchError as exc:
            return outcome(400, str(exc), "invalid")
        return _fhir(searchset(fhir_base(request), resource_type, result))

    @router.get("/{resource_type}")
    async def search(resource_type: str, request: Request) -> Response:
        return answer(resource_type, request, [])

    @router.get("/{resource_type}/_search")
    async def search_get(resource_type: str, request: Request) -> Response:
        return answer(resource_type, request, [])

    @router.post("/{resource_type}/_search")
    async def search_post(resource_type: str, request: Request) -> Response:
        try:
            form = await form_parameters(request)
        except _FormError as exc:
            return exc.response
        return answer(resource_type, request, form)

    @router.get("/{resource_type}/{resource_id}")
    async def read(resource_type: str, resource_id: str) -> Response:
        if not index.supports(resource_type):
            return outcome(
                404, f"the demo FHIR test double has no {resource_type} resources", "not-supported"
            )
        resource = index.read(resource_type, resource_id)
        if resource is None:
            return outcome(404, f"{resource_type}/{resource_id} is not known", "not-found")
        return _fhir(resource)

    @router.api_route("/{path:path}", methods=["POST", "PUT", "PATCH", "DELETE"])
    async def read_only(path: str) -> Response:
        return outcome(405, "the demo FHIR test double is read-only", "not-supported")

    return router
