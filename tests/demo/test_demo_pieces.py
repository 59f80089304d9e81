"""The demo's other parts: when it is mounted, the sandbox URLs, the banner, the viewer's routes."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from cds_service.demo import demo_banner, demo_enabled, sandbox_url
from cds_service.demo._cli import public_base

from ..settings_support import make_settings
from .support import BASE, FHIR, demo_client, small_data


@pytest.mark.parametrize(
    ("flag", "auth_off", "enabled"),
    [
        (None, True, True),  # on by default when auth is off
        ("1", True, True),
        ("true", True, True),
        ("0", True, False),
        ("false", True, False),
        (None, False, False),
        ("1", False, False),  # never when auth is on
    ],
)
def test_demo_enabled(
    monkeypatch: pytest.MonkeyPatch, flag: str | None, auth_off: bool, enabled: bool
) -> None:
    if flag is None:
        monkeypatch.delenv("CDS_DEMO_FHIR", raising=False)
    else:
        monkeypatch.setenv("CDS_DEMO_FHIR", flag)
    assert demo_enabled(make_settings(), auth_off=auth_off) is enabled


def test_sandbox_url_is_filled_in_and_encoded() -> None:
    url = sandbox_url("http://localhost:8080", "mg-kevin-mitchell")
    assert url == (
        "https://sandbox.cds-hooks.org/"
        "?serviceDiscoveryURL=http%3A%2F%2Flocalhost%3A8080%2Fcds-services"
        "&fhirServiceUrl=http%3A%2F%2Flocalhost%3A8080%2Fdemo%2Ffhir"
        "&patientId=mg-kevin-mitchell"
    )
    query = parse_qs(urlsplit(url).query)
    assert query["serviceDiscoveryURL"] == ["http://localhost:8080/cds-services"]
    assert query["fhirServiceUrl"] == ["http://localhost:8080/demo/fhir"]


def test_public_base() -> None:
    assert public_base("127.0.0.1", 8080) == "http://localhost:8080"
    assert public_base("0.0.0.0", 9000) == "http://localhost:9000"
    assert public_base("demo.internal", 8080) == "http://demo.internal:8080"


def test_banner_lists_every_demo_patient_with_its_screen_and_url() -> None:
    data = small_data()
    banner = demo_banner(data, "http://localhost:8080")
    assert "http://localhost:8080/cds-services" in banner
    assert "http://localhost:8080/demo/fhir" in banner
    assert [p.patient_id for p in data.patients] == ["t-anna", "t-bob"]
    assert sandbox_url("http://localhost:8080", "t-anna") in banner
    assert sandbox_url("http://localhost:8080", "t-bob") in banner
    assert "t-hidden" not in banner
    assert "Rx View (order-select)" in banner
    assert '"Aluminum Hydroxide 200 MG / Magnesium Hydroxide 200 MG Chewable Tablet"' in banner
    assert "Patient View (patient-view)" in banner


def test_viewer_page_and_static_files_are_served_without_external_resources() -> None:
    client = demo_client()
    page = client.get("/demo/viewer")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN, no external link
    for name in ("viewer.js", "markdown.js", "viewer.css"):
        response = client.get(f"/demo/static/{name}")
        assert response.status_code == 200, name
        assert "cdn" not in response.text.lower()
    assert client.get("/demo/static/..%2Fbootstrap.py").status_code == 404
    assert client.get("/demo/static/secret.txt").status_code == 404


def test_patients_list_for_the_viewer() -> None:
    body = demo_client().get("/demo/patients").json()
    assert body["fhirServer"] == FHIR
    (anna, bob) = body["patients"]
    assert anna["patientId"] == "t-anna" and anna["hook"] == "order-select"
    assert anna["screen"] == "Rx View"
    assert anna["name"] == "Anna Berg"
    assert anna["topics"] == ["antacid-tacrolimus"]
    assert anna["sandboxUrl"] == sandbox_url(BASE, "t-anna")
    assert bob["screen"] == "Patient View"


def test_hook_requests_for_the_viewer() -> None:
    client = demo_client()
    select = client.get("/demo/requests/t-anna/order-select").json()
    assert select["hook"] == "order-select"
    assert select["fhirServer"] == FHIR
    assert select["context"]["patientId"] == "t-anna"
    assert select["context"]["selections"] == ["MedicationRequest/request-123"]
    assert select["context"]["draftOrders"]["entry"][0]["resource"]["id"] == "request-123"
    assert select["prefetch"]["patient"]["id"] == "t-anna"

    sign = client.get("/demo/requests/t-anna/order-sign").json()
    assert "selections" not in sign["context"]
    assert sign["context"]["draftOrders"] == select["context"]["draftOrders"]

    view = client.get("/demo/requests/t-anna/patient-view").json()
    assert set(view["context"]) == {"userId", "patientId"}
    assert view["hookInstance"] != select["hookInstance"]

    # Bob has no draft orders; unknown patients and hooks are 404s.
    for path in ("t-bob/order-select", "nobody/patient-view", "t-anna/appointment-book"):
        response = client.get(f"/demo/requests/{path}")
        assert response.status_code == 404, path
        assert response.json()["resourceType"] == "OperationOutcome"
