"""``/demo/fhir``: a read-only FHIR R4 test double over the demo patients.

For the CDS Hooks sandbox and tests: Patient read, searches by patient, code, status, date,
``_count`` (paged with ``Bundle.link`` next), ``_sort``, and ``/metadata``. Unknown search
parameters are ignored as FHIR allows: they are left out of ``Bundle.link`` self and named in an
information ``OperationOutcome`` entry (``search.mode`` outcome). It is not a FHIR server.
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
_SAFE = "|,:/"


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


def fhir_router(data: DemoData) -> APIRouter:
    """The routes of the demo FHIR endpoint, to include with the ``/demo/fhir`` prefix."""
    router = APIRouter()
    index = data.index

    @router.get("/metadata")
    async def metadata(request: Request) -> Response:
        return _fhir(capability_statement(fhir_base(request)))

    @router.get("/{resource_type}")
    async def search(resource_type: str, request: Request) -> Response:
        if not index.supports(resource_type):
            return outcome(
                404, f"the demo FHIR test double has no {resource_type} resources", "not-supported"
            )
        params = parse_qsl(request.url.query, keep_blank_values=True)
        try:
            result = index.search(resource_type, params)
        except SearchError as exc:
            return outcome(400, str(exc), "invalid")
        return _fhir(searchset(fhir_base(request), resource_type, result))

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
