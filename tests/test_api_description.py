"""The version everywhere, ``/openapi.json`` (every route, the CDS Hooks shapes), ``/docs`` without
anything fetched, and ``/readyz`` with a reason per check."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Route

from cds_service import __version__
from cds_service.app import create_app
from cds_service.app._api_models import (
    CdsResponse,
    Discovery,
    HookRequest,
    OperationOutcome,
    Readiness,
)
from cds_service.bootstrap import build_app
from cds_service.feedback import FeedbackBody
from cds_service.protocol.discovery import VERSION_EXTENSION
from cds_service.scenarios import load_scenario
from cds_service.settings import AuthMode

from .settings_support import make_settings
from .support import REPO, hook_request, magnesium, make_client, make_service

SCENARIO = REPO / "fixtures" / "scenarios" / "ckd4-critical-mg-mgdl.json"


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every HTTP route the app answers, HEAD aside."""
    routes = set()
    for route in app.routes:
        if isinstance(route, Route) and route.methods:
            routes |= {(m.lower(), route.path) for m in route.methods if m != "HEAD"}
    return routes


def described(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in document["paths"].items() for method in item}


def _app(tmp_path: Path, **overrides: Any) -> FastAPI:
    return build_app(make_settings(database_url=f"sqlite:///{tmp_path}/db.sqlite3", **overrides))


@pytest.mark.parametrize("demo", [False, True], ids=["service", "with-demo"])
def test_openapi_describes_every_route(tmp_path: Path, demo: bool) -> None:
    with TestClient(_app(tmp_path, demo_fhir=demo)) as client:
        document = client.get("/openapi.json").json()
        routes = served_routes(client.app)  # type: ignore[arg-type]
    assert routes, "no routes found"
    assert routes <= described(document), routes - described(document)
    assert document["info"]["version"] == __version__
    assert ("post", "/cds-services/{service_id}") in routes  # the plain Starlette hook route


def test_openapi_has_the_cds_hooks_request_and_response_shapes() -> None:
    document = make_client().get("/openapi.json").json()
    hook = document["paths"]["/cds-services/{service_id}"]["post"]
    body = hook["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/HookRequest"}
    ok = hook["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/CdsResponse"}
    assert {"400", "404", "412", "413"} <= set(hook["responses"])
    assert hook["parameters"][0]["schema"]["enum"] == [
        "mg-patient-view",
        "mg-order-select",
        "mg-order-sign",
    ]
    schemas = document["components"]["schemas"]
    for name in ("HookRequest", "CdsResponse", "Card", "Suggestion", "Discovery", "FeedbackBody"):
        assert name in schemas, name
    assert set(schemas["Card"]["properties"]["indicator"]["enum"]) == {
        "info",
        "warning",
        "critical",
    }
    feedback = document["paths"]["/cds-services/{service_id}/feedback"]["post"]
    assert "$ref" in feedback["requestBody"]["content"]["application/json"]["schema"]
    # every reference resolves
    for ref in re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(document)):
        assert ref in schemas, ref


def test_openapi_under_jwt_names_the_bearer_token() -> None:
    document = make_client(authenticator=lambda *_: None).get("/openapi.json").json()  # type: ignore[arg-type,return-value]
    assert document["components"]["securitySchemes"]["cdsHooksJwt"]["bearerFormat"] == "JWT"
    hook = document["paths"]["/cds-services/{service_id}"]["post"]
    assert hook["security"] == [{"cdsHooksJwt": []}]
    assert "security" not in document["paths"]["/healthz"]["get"]


def test_the_described_shapes_match_what_the_service_answers() -> None:
    client = make_client()
    scenario = load_scenario(SCENARIO, shift=False)
    HookRequest.model_validate(scenario.request)
    request = hook_request(observations=[magnesium(0.9)])
    answer = client.post("/cds-services/mg-patient-view", json=request).json()
    assert answer["cards"]
    CdsResponse.model_validate(answer)
    Discovery.model_validate(client.get("/cds-services").json())
    Readiness.model_validate(client.get("/readyz").json())
    OperationOutcome.model_validate(client.post("/cds-services/mg-patient-view", json={}).json())
    OperationOutcome.model_validate(client.post("/cds-services/nope", json=request).json())
    FeedbackBody.model_validate(
        {
            "feedback": [
                {
                    "card": answer["cards"][0]["uuid"],
                    "outcome": "accepted",
                    "outcomeTimestamp": "2026-11-20T12:00:00Z",
                }
            ]
        }
    )


def test_docs_is_one_self_contained_page() -> None:
    client = make_client()
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    html = page.text
    document = client.get("/openapi.json").json()
    for path in document["paths"]:
        assert f'<span class="path">{path}</span>' in html, path
    for name in document["components"]["schemas"]:
        assert f'id="schema-{name}"' in html, name
    # nothing to fetch: no scripts, no stylesheets, no images, no frames, no absolute URLs
    assert not re.search(r"<(script|link|img|iframe)\b", html)
    assert " src=" not in html
    assert "://" not in html


def test_version_in_discovery_readyz_metrics_and_the_command_line() -> None:
    client = make_client()
    for service in client.get("/cds-services").json()["services"]:
        assert isinstance(service["extension"], dict)
        assert service["extension"][VERSION_EXTENSION] == __version__
    assert client.get("/readyz").json()["version"] == __version__
    metrics = client.get("/metrics").text
    assert re.search(
        rf'cds_build_info{{[^}}]*version="{re.escape(__version__)}"[^}}]*}} 1\.0', metrics
    )
    printed = subprocess.run(
        [sys.executable, "-m", "cds_service.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert printed.stdout.strip() == f"cds-service {__version__}"


def test_readyz_gives_a_reason_for_each_check() -> None:
    ready = make_client().get("/readyz")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert set(checks) == {"content", "database", "auth"}
    assert all(check["ok"] for check in checks.values())
    assert "11 topics" in checks["content"]["reason"]
    assert checks["auth"]["reason"].startswith("off:")


def test_readyz_says_why_it_is_not_ready() -> None:
    app = create_app(make_service(), database_check=lambda: "the audit writer has stopped")
    answer = TestClient(app).get("/readyz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "not-ready"
    assert body["checks"]["database"] == {"ok": False, "reason": "the audit writer has stopped"}


def test_readyz_with_a_closed_store(tmp_path: Path) -> None:
    app = _app(tmp_path, auth_mode=AuthMode.OFF)
    with TestClient(app) as client:
        assert client.get("/readyz").json()["checks"]["database"]["ok"] is True
    # the lifespan has closed the store
    answer = TestClient(app).get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["database"]["reason"] == "the store is closed"
