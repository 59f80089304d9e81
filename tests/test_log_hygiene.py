"""Nothing secret reaches the logs: everything written during a full run is captured and searched.

One run exercises every path that logs: a JWT-authenticated hook call whose data comes from a
FHIR server (a real local HTTP server, with paging and a Medication reference), a FHIR server
that fails (412), a request with no data at all (412), a malformed request (400), bad tokens
(401) and feedback with a free-text comment naming the patient. Whatever structlog, the standard
library loggers (uvicorn, urllib3, SQLAlchemy, alembic, httpx) or anything else writes to stdout
or stderr is captured at the file-descriptor level and must not contain the patient id, the
patient's name, the FHIR access token, the JWT (or any of its parts), or the lab value.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from cds_service._logging import REDACTED, configure_logging, patient_hash
from cds_service.app import create_app
from cds_service.gathering import RequestsFhirClient
from cds_service.store import Store
from cds_service.trust import TrustedClient, TrustVerifier

from .http_support import local_http_server
from .settings_support import make_settings
from .support import LOINC, RXNORM, UCUM, make_service
from .trust.support import SigningKey, bearer, claims, mint, new_ec_key

PATIENT_ID = "pat-SECRET-4711"
PATIENT_NAME = "Wilhelmina Quackenbush-Testperson"
FAMILY_NAME = "Quackenbush-Testperson"
ACCESS_TOKEN = "tok-SECRET-9f8e"
LAB_VALUE = "1.137"
HASH_KEY = "log-hygiene-hash-key"
BASE_URL = "https://cds.example.org"
ISS = "https://ehr.example.org/fhir"
HOOK = "/cds-services/mg-patient-view"
FEEDBACK = "/cds-services/mg-patient-view/feedback"


# --- a FHIR server that knows one patient -----------------------------------------------------


def _patient() -> dict[str, Any]:
    given, family = PATIENT_NAME.split(" ", 1)
    return {
        "resourceType": "Patient",
        "id": PATIENT_ID,
        "name": [{"text": PATIENT_NAME, "given": [given], "family": family}],
        "birthDate": "1961-02-03",
        "gender": "female",
    }


def _magnesium() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "obs-mg-1",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "19123-9"}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}", "display": PATIENT_NAME},
        "effectiveDateTime": "2026-11-19T08:00:00Z",
        "valueQuantity": {"value": float(LAB_VALUE), "unit": "mg/dL", "system": UCUM},
    }


def _potassium() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "obs-k-1",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "2823-3"}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": "2026-11-19T08:00:00Z",
        "valueQuantity": {"value": 4.1, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"},
    }


def _tacrolimus_order() -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": "mr-tac",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT_ID}", "display": PATIENT_NAME},
        "authoredOn": "2026-03-01",
        "medicationReference": {"reference": "Medication/med-tac"},
    }


def _tacrolimus() -> dict[str, Any]:
    return {
        "resourceType": "Medication",
        "id": "med-tac",
        "code": {
            "coding": [{"system": RXNORM, "code": "198377", "display": "Tacrolimus 1 MG"}],
        },
    }


def _searchset(base: str, resources: list[dict[str, Any]], next_url: str | None = None) -> Any:
    document: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources
        ],
    }
    if next_url:
        document["link"] = [{"relation": "next", "url": next_url}]
    return document


@dataclass
class FhirServer:
    base: str = ""
    seen: list[tuple[str, str | None]] = field(default_factory=list)

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if path.startswith("/broken/"):
            return 500, {"resourceType": "OperationOutcome", "issue": []}
        fhir = self.base + "/fhir"
        if path == f"/fhir/Patient/{PATIENT_ID}":
            return 200, _patient()
        if path == "/fhir/Observation":
            if query.get("page") == ["2"]:
                return 200, _searchset(fhir, [_potassium()])
            page_two = f"{fhir}/Observation?patient={PATIENT_ID}&page=2"
            return 200, _searchset(fhir, [_magnesium()], page_two)
        if path == "/fhir/MedicationRequest":
            return 200, _searchset(fhir, [_tacrolimus_order()])
        if path == "/fhir/MedicationStatement":
            return 200, _searchset(fhir, [])
        if path == "/fhir/Medication/med-tac":
            return 200, _tacrolimus()
        return 404, {"resourceType": "OperationOutcome", "issue": []}


def _handler(server: FhirServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            server.seen.append((parts.path, self.headers.get("Authorization")))
            status, document = server.answer(parts.path, parse_qs(parts.query))
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # the test double's own access log is not the service's

    return Handler


@pytest.fixture
def fhir_server() -> Iterator[FhirServer]:
    state = FhirServer()
    with local_http_server(_handler(state)) as base:
        state.base = base
        yield state


# --- the run ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    return new_ec_key("hygiene-ec-1")


def _token(key: SigningKey, path: str, **overrides: Any) -> str:
    payload = claims(at=time.time(), **{"iss": ISS, "aud": BASE_URL + path, **overrides})
    return mint(key, payload)


def _hook_request(fhir_server: str | None, **extra: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr-1", "patientId": PATIENT_ID},
        **extra,
    }
    if fhir_server is not None:
        request["fhirServer"] = fhir_server
        request["fhirAuthorization"] = {
            "access_token": ACCESS_TOKEN,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": f"patient/*.read launch/patient:{PATIENT_ID}",
            "subject": "cds-service",
        }
    return request


@dataclass
class Run:
    level: str
    output: str
    jwts: list[str]
    lines: list[dict[str, Any]]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]


def _full_run(
    level: str,
    tmp_path: Path,
    fhir_server: FhirServer,
    ec_key: SigningKey,
    capfd: pytest.CaptureFixture[str],
) -> Run:
    jwts: list[str] = []

    def auth(path: str, **overrides: Any) -> dict[str, str]:
        token = _token(ec_key, path, **overrides)
        jwts.append(token)
        return {"Authorization": bearer(token)}

    store = Store.open(f"sqlite:///{tmp_path / 'hygiene.sqlite3'}")
    fhir_client = RequestsFhirClient()
    try:
        settings = make_settings(public_base_url=BASE_URL, patient_hash_key=HASH_KEY)
        service = make_service(store=store, settings=settings, fhir_client=fhir_client)
        # The test FHIR server is on loopback: listed, or the service would refuse to fetch there.
        ehr = TrustedClient(iss=ISS, jwks=ec_key.jwks(), fhir_servers=(fhir_server.base,))
        verifier = TrustVerifier([ehr], replay_cache=store)
        with TestClient(create_app(service, authenticator=verifier.verify)) as client:
            # 200: every prefetch key absent, fetched from the FHIR server with the access token
            ok = client.post(
                HOOK, json=_hook_request(fhir_server.base + "/fhir"), headers=auth(HOOK)
            )
            assert ok.status_code == 200, ok.text
            (card,) = [c for c in ok.json()["cards"] if c["indicator"] == "critical"]
            assert LAB_VALUE in card["summary"], "the value reaches the clinician, not the log"

            # 412: the FHIR server fails
            failed = client.post(
                HOOK, json=_hook_request(fhir_server.base + "/broken"), headers=auth(HOOK)
            )
            assert failed.status_code == 412
            # 412: no prefetch and no fhirServer
            nothing = client.post(HOOK, json=_hook_request(None), headers=auth(HOOK))
            assert nothing.status_code == 412

            # 400: malformed, but full of secrets
            malformed = _hook_request(fhir_server.base + "/fhir")
            malformed["hook"] = PATIENT_NAME
            malformed["prefetch"] = {
                "patient": _patient(),
                "observations": {"entry": [_magnesium()]},
            }
            bad_request = client.post(HOOK, json=malformed, headers=auth(HOOK))
            assert bad_request.status_code == 400
            not_json = client.post(
                HOOK,
                content=f'{{"patientId": "{PATIENT_ID}", "name": "{PATIENT_NAME}", '.encode(),
                headers={"Content-Type": "application/json", **auth(HOOK)},
            )
            assert not_json.status_code == 400

            # 401: a replayed token, a token for another URL, one from an unknown issuer
            # claiming to be about the patient, and the FHIR access token sent as the bearer
            replayed = auth(HOOK)
            assert client.post(HOOK, json=_hook_request(None), headers=replayed).status_code == 412
            assert client.post(HOOK, json=_hook_request(None), headers=replayed).status_code == 401
            wrong_aud = auth("/cds-services")
            assert client.post(HOOK, json=_hook_request(None), headers=wrong_aud).status_code == 401
            # (the verifier logs an unknown issuer's iss, truncated, to diagnose a misconfigured
            # EHR: the secrets ride in the other claims)
            stranger = auth(
                HOOK, iss="https://evil.example/fhir", sub=PATIENT_NAME, patient=PATIENT_ID
            )
            assert client.post(HOOK, json=_hook_request(None), headers=stranger).status_code == 401
            opaque = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
            assert client.post(HOOK, json=_hook_request(None), headers=opaque).status_code == 401
            assert client.post(HOOK, json=_hook_request(None)).status_code == 401

            # feedback whose free text names the patient
            feedback = {
                "feedback": [
                    {
                        "card": card["uuid"],
                        "outcome": "overridden",
                        "overrideReason": {
                            "userComment": f"{PATIENT_NAME} ({PATIENT_ID}) declined; Mg {LAB_VALUE}"
                        },
                        "outcomeTimestamp": "2026-11-20T12:05:00Z",
                    }
                ]
            }
            stored = client.post(FEEDBACK, json=feedback, headers=auth(FEEDBACK))
            assert stored.status_code == 200, stored.text
            store.flush(10)
    finally:
        fhir_client.close()
        store.close()

    # The run really used the secrets: the FHIR server saw the patient and the token.
    assert any(PATIENT_ID in path for path, _ in fhir_server.seen)
    assert {authorization for _, authorization in fhir_server.seen} == {f"Bearer {ACCESS_TOKEN}"}
    assert any("Medication/med-tac" in path for path, _ in fhir_server.seen)

    captured = capfd.readouterr()
    output = captured.out + captured.err
    lines = []
    for text in output.splitlines():
        if text.startswith("{"):
            lines.append(json.loads(text))
    return Run(level, output, jwts, lines)


@pytest.fixture(params=["INFO", "DEBUG"])
def run(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    fhir_server: FhirServer,
    ec_key: SigningKey,
    capfd: pytest.CaptureFixture[str],
) -> Iterator[Run]:
    configure_logging(request.param)
    capfd.readouterr()
    try:
        yield _full_run(request.param, tmp_path, fhir_server, ec_key, capfd)
    finally:
        configure_logging("INFO")


# --- the checks ---------------------------------------------------------------------------------


def _secrets(run: Run) -> dict[str, str]:
    secrets = {
        "patient id": PATIENT_ID,
        "patient name": PATIENT_NAME,
        "family name": FAMILY_NAME,
        "FHIR access token": ACCESS_TOKEN,
        "lab value": LAB_VALUE,
    }
    for number, token in enumerate(run.jwts):
        _header, payload, signature = token.split(".")
        secrets[f"JWT {number}"] = token
        secrets[f"JWT {number} payload"] = payload
        secrets[f"JWT {number} signature"] = signature
    return secrets


def _occurrence(value: str, output: str) -> re.Match[str] | None:
    """Where a secret appears; a number only as a whole number (the lab value 1.137 is not
    leaked by a timestamp's "31.137003")."""
    pattern = re.escape(value)
    if value[0].isdigit():
        pattern = rf"(?<![\d.]){pattern}(?![\d])"
    return re.search(pattern, output)


def test_a_number_is_found_only_whole() -> None:
    assert _occurrence(LAB_VALUE, f"Mg {LAB_VALUE} mg/dL") is not None
    assert _occurrence(LAB_VALUE, f'"value": {LAB_VALUE}}}') is not None
    assert _occurrence(LAB_VALUE, "2026-12-03T12:42:31.137003Z") is None
    assert _occurrence(ACCESS_TOKEN, f"Bearer {ACCESS_TOKEN}x") is not None


def test_nothing_secret_is_written_anywhere(run: Run) -> None:
    assert run.output, "nothing was captured"
    found = {name: _occurrence(value, run.output) for name, value in _secrets(run).items()}
    leaks = {name: match for name, match in found.items() if match is not None}
    context = {
        name: run.output[max(0, match.start() - 200) : match.end() + 100]
        for name, match in leaks.items()
    }
    assert not leaks, f"leaked into the logs: {json.dumps(context, indent=1)}"


def test_every_line_is_json(run: Run) -> None:
    for text in run.output.splitlines():
        if text.strip():
            assert text.startswith("{"), f"not a JSON log line: {text[:200]}"
            json.loads(text)


def test_the_expected_events_are_there(run: Run) -> None:
    hashed = patient_hash(HASH_KEY, PATIENT_ID)
    (evaluated,) = run.events("hook.evaluated")
    assert evaluated["patient"] == hashed
    assert evaluated["service"] == "mg-patient-view"
    assert "hypomagnesemia" in evaluated["topics"]
    assert evaluated["iss"] == ISS
    assert evaluated["jti"] and len(evaluated["jti"]) <= 128

    (fallback,) = run.events("gathering.fhir_fallback")
    assert set(fallback["keys"]) == {
        "patient",
        "observations",
        "medicationRequests",
        "medicationStatements",
        "conditions",
    }
    unavailable = run.events("gathering.unavailable")
    reasons_412 = sorted({reason for line in unavailable for reason in line["reasons"].values()})
    assert reasons_412 == ["FHIR server failed", "no prefetch and no fhirServer"]
    assert all(line["iss"] == ISS for line in unavailable)
    assert any(line["details"] for line in unavailable), "the HTTP status is logged"

    reasons = sorted(line["reason"] for line in run.events("auth.rejected"))
    assert reasons == sorted(
        ["replayed-jti", "bad-aud", "unknown-iss", "malformed-token", "missing-token"]
    )
    (stored,) = run.events("feedback.stored")
    assert stored["iss"] == ISS and stored["items"] == 1


def test_the_fhir_client_logs_no_request_lines(run: Run) -> None:
    """The FHIR client logs no request lines at any level, DEBUG included (its URLs carry the
    patient id); what a URL-handling library logs is covered by the next test."""
    library_lines = [
        line
        for line in run.lines
        if line["logger"].split(".")[0] in ("urllib3", "requests", "httpcore", "h11")
    ]
    assert not library_lines


def test_library_arguments_and_tracebacks_are_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG")
    capsys.readouterr()
    try:
        url = f"https://fhir.example.org/Patient/{PATIENT_ID}"
        logging.getLogger("urllib3.connectionpool").debug('%s "GET %s" %s', "https", url, 200)
        logging.getLogger("sqlalchemy.engine.Engine").warning("[cached] %r", (PATIENT_NAME,))
        try:
            raise ValueError(f"bad header from {url}")
        except ValueError:
            logging.getLogger("urllib3.connectionpool").warning(
                "Failed to parse headers (url=%s): %s", url, "x", exc_info=True
            )
        logging.getLogger("cds_service.elsewhere").info("kept %s", "as is")
        lines = [json.loads(text) for text in capsys.readouterr().err.splitlines() if text]
    finally:
        configure_logging("INFO")
    assert [line["event"] for line in lines] == [
        f'{REDACTED} "GET {REDACTED}" {REDACTED}',
        f"[cached] {REDACTED}",
        f"Failed to parse headers (url={REDACTED}): {REDACTED}",
        "kept as is",
    ]
    assert lines[2]["exception"] == "ValueError"
    rendered = json.dumps(lines)
    assert PATIENT_ID not in rendered and PATIENT_NAME not in rendered


def test_patient_hash_is_keyed() -> None:
    hashed = patient_hash(HASH_KEY, PATIENT_ID)
    assert hashed != patient_hash("another-key", PATIENT_ID)
    assert PATIENT_ID not in hashed
