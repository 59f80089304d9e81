"""HTTP-level answers: 405 with Allow, 415 for a body that is not JSON, 400 for another patient,
and a client that disconnects in the middle of its body (one INFO line, counted, no 200)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service._logging import configure_logging
from cds_service.app import create_app
from cds_service.metrics import REGISTRY

from .support import hook_request, magnesium, make_client, make_service, patient

HOOK = "/cds-services/mg-patient-view"
FEEDBACK = "/cds-services/mg-patient-view/feedback"


@pytest.fixture
def client() -> TestClient:
    return make_client()


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    configure_logging("INFO")
    capsys.readouterr()

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]

    yield lines
    configure_logging("INFO")


# --- 405 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", HOOK, {"POST"}),
        ("PUT", HOOK, {"POST"}),
        ("DELETE", FEEDBACK, {"POST"}),
        ("POST", "/cds-services", {"GET"}),
        ("POST", "/healthz", {"GET"}),
        ("PATCH", "/metrics", {"GET"}),
        ("OPTIONS", HOOK, {"POST"}),  # not a CORS preflight: no Origin
    ],
)
def test_405_says_which_methods_are_allowed(
    client: TestClient, method: str, path: str, allowed: set[str]
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "not-supported"


# --- 415 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",  # curl -d without -H
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/fhir+xml",
        "json",
        "",
    ],
)
@pytest.mark.parametrize("path", [HOOK, FEEDBACK])
def test_a_body_labelled_as_anything_but_json_is_415(
    client: TestClient, content_type: str, path: str
) -> None:
    body = json.dumps(hook_request(observations=[magnesium(1.1)])).encode()
    response = client.post(path, content=body, headers={"Content-Type": content_type})
    assert response.status_code == 415
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-supported"
    assert "application/json" in outcome["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/fhir+json",
        "application/fhir+json;fhirVersion=4.0",
        None,  # no Content-Type at all
    ],
)
def test_json_media_types_and_a_missing_content_type_are_read(
    client: TestClient, content_type: str | None
) -> None:
    body = json.dumps(hook_request(observations=[magnesium(1.1)])).encode()
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.post(HOOK, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["cards"][0]["indicator"] == "critical"


# --- one patient per call -----------------------------------------------------------------------


def test_a_prefetched_patient_of_another_id_is_a_400_naming_the_mismatch(
    client: TestClient,
) -> None:
    request = hook_request(observations=[magnesium(1.1)])
    request["prefetch"]["patient"] = patient("someone-else")
    response = client.post(HOOK, json=request)
    assert response.status_code == 400
    [issue] = response.json()["issue"]
    assert issue["expression"] == ["prefetch.patient"]
    assert "id is not context.patientId" in issue["diagnostics"]


def test_a_critical_result_about_another_patient_gives_no_card(client: TestClient) -> None:
    theirs = magnesium(1.1)
    theirs["subject"] = {"reference": "Patient/someone-else"}
    response = client.post(HOOK, json=hook_request(observations=[theirs]))
    assert response.status_code == 200
    assert response.json() == {"cards": []}
    dropped = REGISTRY.get_sample_value(
        "cds_other_patient_resources_total", {"resource_type": "Observation"}
    )
    assert dropped is not None and dropped >= 1


# --- a client that goes away mid-body -------------------------------------------------------


def _abort_mid_body(app: Any, path: str) -> list[dict[str, Any]]:
    """Drive the ASGI app directly: half a body, then http.disconnect; returns what it sent."""
    body = json.dumps(hook_request(observations=[magnesium(1.1)])).encode()
    messages = [
        {"type": "http.request", "body": body[:100], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    return sent


def _count(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(("path", "route"), [(HOOK, "hook"), (FEEDBACK, "feedback")])
def test_a_client_gone_mid_body_is_one_info_line_and_a_client_abort(
    json_logs: Callable[[], list[dict[str, Any]]], path: str, route: str
) -> None:
    app = create_app(make_service())
    aborts = _count("cds_client_aborts_total", {"route": route})
    ok = _count("cds_responses_total", {"service": "mg-patient-view", "status": "200"})
    closed = _count("cds_responses_total", {"service": "mg-patient-view", "status": "499"})
    _abort_mid_body(app, path)
    lines = json_logs()
    aborted = [line for line in lines if line["event"] == "request.client_aborted"]
    assert len(aborted) == 1
    assert aborted[0]["level"] == "info"
    assert aborted[0]["route"] == route and aborted[0]["received_bytes"] == 100
    assert not [line for line in lines if line["level"] in ("error", "critical")]
    assert not any("Traceback" in json.dumps(line) for line in lines)
    assert _count("cds_client_aborts_total", {"route": route}) == aborts + 1
    assert _count("cds_responses_total", {"service": "mg-patient-view", "status": "200"}) == ok
    if route == "hook":
        after = _count("cds_responses_total", {"service": "mg-patient-view", "status": "499"})
        assert after == closed + 1
