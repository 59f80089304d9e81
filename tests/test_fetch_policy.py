"""Where the service fetches FHIR data from, through the app, with real local FHIR servers.

In ``jwt`` mode the caller's trust-file entry decides: its ``fhir_servers`` list, or (without a
list) public addresses only. With authentication off any server is allowed, loopback included.
Redirects are never followed. Every FHIR server here is on this machine; a refused one must not
see a single request.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.gathering import HttpFhirClient
from cds_service.gathering._policy import IPAddress
from cds_service.trust import VerifiedCaller

from .raw_http import Exchange, RawServer, answer, raw_server, redirect
from .support import LOINC, UCUM, make_service, patient

HOOK = "/cds-services/mg-patient-view"
ISS = "https://ehr.example.org"


def _route(target: str) -> tuple[str, Any]:
    """A FHIR server that knows pat-1: Mg 1.1 mg/dL yesterday (a critical card)."""
    path = urlsplit(target).path
    if path.endswith("/Patient/pat-1"):
        return "200 OK", patient()
    if path.endswith("/Observation"):
        observation = {
            "resourceType": "Observation",
            "id": "mg-1",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "19123-9"}]},
            "subject": {"reference": "Patient/pat-1"},
            "effectiveDateTime": "2026-11-19T08:00:00Z",
            "valueQuantity": {"value": 1.1, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
        }
        return "200 OK", {"resourceType": "Bundle", "entry": [{"resource": observation}]}
    if path.endswith(("/MedicationRequest", "/MedicationStatement")):
        return "200 OK", {"resourceType": "Bundle", "entry": []}
    return "404 Not Found", {"resourceType": "OperationOutcome", "issue": []}


@pytest.fixture
def fhir() -> Iterator[RawServer]:
    with raw_server(answer(_route)) as server:
        yield server


@pytest.fixture
def other_fhir() -> Iterator[RawServer]:
    with raw_server(answer(_route)) as server:
        yield server


class FixedResolver:
    """Every name resolves to loopback: a hostname that would smuggle in a local address."""

    def resolve(self, host: str, timeout_s: float) -> Sequence[IPAddress]:
        return [ipaddress.ip_address("127.0.0.1")]


def _client(caller: VerifiedCaller | None, *, resolver: Any = None) -> TestClient:
    fhir_client = HttpFhirClient(resolver=resolver)
    service = make_service(fhir_client=fhir_client)
    authenticator = None if caller is None else (lambda header, audience: caller)
    return TestClient(create_app(service, authenticator=authenticator))


def _caller(fhir_servers: tuple[str, ...] | None) -> VerifiedCaller:
    return VerifiedCaller(ISS, None, f"jti-{time.monotonic_ns()}", None, "k", "ES384", fhir_servers)


def _call(client: TestClient, fhir_server: str) -> Any:
    request = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "fhirServer": fhir_server,
        "fhirAuthorization": {"access_token": "tok", "token_type": "Bearer"},
        "context": {"userId": "Practitioner/example", "patientId": "pat-1"},
    }
    return client.post(HOOK, json=request, headers={"Authorization": "Bearer x"})


def _reasons(response: Any) -> set[str]:
    return {issue["diagnostics"].rsplit(": ", 1)[0] for issue in response.json()["issue"]}


def _critical(response: Any) -> None:
    assert response.status_code == 200, response.text
    assert [card["indicator"] for card in response.json()["cards"]] == ["critical"]


# --- jwt mode, a client with fhir_servers ----------------------------------------------------


def test_an_allowlisted_fhir_server_is_fetched_from_even_on_loopback(fhir: RawServer) -> None:
    client = _client(_caller((f"{fhir.origin}/fhir",)))
    _critical(_call(client, f"{fhir.origin}/fhir"))
    assert len(fhir.heads) == 5  # the five prefetch keys


def test_a_fhir_server_below_a_listed_base_is_allowed(fhir: RawServer) -> None:
    client = _client(_caller((f"{fhir.origin}/",)))
    _critical(_call(client, f"{fhir.origin}/fhir"))


def test_an_unlisted_fhir_server_is_a_412_naming_the_reason(
    fhir: RawServer, other_fhir: RawServer
) -> None:
    client = _client(_caller((f"{fhir.origin}/fhir",)))
    response = _call(client, f"{other_fhir.origin}/fhir")
    assert response.status_code == 412
    assert _reasons(response) == {"fhirServer is not one of this client's fhir_servers"}
    expressions = {issue["expression"][0] for issue in response.json()["issue"]}
    assert expressions == {
        "prefetch.patient",
        "prefetch.observations",
        "prefetch.medicationRequests",
        "prefetch.medicationStatements",
    }
    assert other_fhir.connections == 0 and fhir.connections == 0


def test_a_sibling_path_of_a_listed_base_is_refused(fhir: RawServer) -> None:
    client = _client(_caller((f"{fhir.origin}/fhir",)))
    response = _call(client, f"{fhir.origin}/fhir-other")
    assert response.status_code == 412
    assert fhir.connections == 0


def test_prefetch_that_is_complete_needs_no_fhir_server_check(other_fhir: RawServer) -> None:
    client = _client(_caller(("https://ehr.example.org/fhir",)))
    request = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "fhirServer": f"{other_fhir.origin}/fhir",
        "context": {"userId": "Practitioner/example", "patientId": "pat-1"},
        "prefetch": {
            "patient": patient(),
            "observations": None,
            "medicationRequests": None,
            "medicationStatements": None,
            "conditions": None,
        },
    }
    response = client.post(HOOK, json=request, headers={"Authorization": "Bearer x"})
    assert response.status_code == 200
    assert other_fhir.connections == 0


# --- jwt mode, a client without a list: public addresses only --------------------------------


def test_a_loopback_fhir_server_is_refused_for_an_unlisted_client(fhir: RawServer) -> None:
    response = _call(_client(_caller(None)), f"{fhir.origin}/fhir")
    assert response.status_code == 412
    assert _reasons(response) == {
        "fhirServer resolves to a loopback address, and only public ones are allowed"
    }
    assert fhir.connections == 0


def test_a_name_resolving_to_loopback_is_refused_for_an_unlisted_client(fhir: RawServer) -> None:
    client = _client(_caller(None), resolver=FixedResolver())
    response = _call(client, f"http://fhir.example.test:{fhir.port}/fhir")
    assert response.status_code == 412
    assert _reasons(response) == {
        "fhirServer resolves to a loopback address, and only public ones are allowed"
    }
    assert fhir.connections == 0


@pytest.mark.parametrize(
    "fhir_server",
    [
        "http://10.20.30.40/fhir",
        "http://192.168.1.10/fhir",
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/fhir",
        "http://[::ffff:10.0.0.1]/fhir",
    ],
)
def test_a_private_or_metadata_address_is_refused_without_a_connection(fhir_server: str) -> None:
    class NoConnections(HttpFhirClient):
        def _open(self, sock: Any, address: Any, port: int) -> None:
            raise AssertionError(f"tried to connect to {address}")

    service = make_service(fhir_client=NoConnections())
    client = TestClient(create_app(service, authenticator=lambda h, a: _caller(None)))
    response = _call(client, fhir_server)
    assert response.status_code == 412
    assert all("only public ones are allowed" in reason for reason in _reasons(response))


# --- auth off: today's freedom, but no redirects ------------------------------------------------


def test_auth_off_fetches_from_loopback(fhir: RawServer) -> None:
    _critical(_call(_client(None), f"{fhir.origin}/fhir"))


def test_a_redirect_to_another_loopback_server_is_not_followed(other_fhir: RawServer) -> None:
    with raw_server(redirect(f"{other_fhir.origin}/fhir/Patient/pat-1")) as redirecting:
        response = _call(_client(None), f"{redirecting.origin}/fhir")
    assert response.status_code == 412
    assert _reasons(response) == {"FHIR server failed"}
    assert other_fhir.connections == 0


def test_a_redirect_to_another_path_is_not_followed() -> None:
    def respond(exchange: Exchange) -> bool:
        if exchange.target.startswith("/fhir/"):
            return redirect("/latest/meta-data/iam/security-credentials/")(exchange)
        return answer(_route)(exchange)

    with raw_server(respond) as server:
        response = _call(_client(None), f"{server.origin}/fhir")
        assert response.status_code == 412
        assert not [path for path in server.paths() if path.startswith("/latest")]


@pytest.mark.parametrize("caller", [None, _caller(None), _caller(("https://ehr.example.org",))])
def test_a_fhir_server_that_is_not_a_url_is_a_412_in_every_mode(caller: Any) -> None:
    response = _call(_client(caller), "http://[")
    assert response.status_code == 412
    assert _reasons(response) == {"fhirServer is not an http(s) URL with a host"}
