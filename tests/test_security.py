"""JWT trust end to end: the real app, the real verifier, and the Store as the replay cache.

Every token here is signed with a real ES384 (or RS384) key, and ``aud`` must be the exact public
URL called: ``https://cds.example.org`` plus the path.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from cds_service._logging import configure_logging
from cds_service.app import create_app
from cds_service.bootstrap import build_app
from cds_service.settings import Settings
from cds_service.store import Store
from cds_service.trust import TrustedClient, TrustVerifier

from .settings_support import make_settings
from .support import hook_request, magnesium, make_service
from .trust.support import SigningKey, bearer, claims, mint, new_ec_key, new_rsa_key

BASE_URL = "https://cds.example.org"
ISS = "https://ehr.example.org/fhir"
DISCOVERY = "/cds-services"
HOOK = "/cds-services/mg-patient-view"
FEEDBACK = "/cds-services/mg-patient-view/feedback"
EHR_ORIGIN = "https://ehr.example.org"


def aud(path: str) -> str:
    return BASE_URL + path


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"public_base_url": BASE_URL, **overrides}
    return make_settings(**values)


def token_for(key: SigningKey, path: str, **overrides: Any) -> str:
    """A fresh token (new jti, issued now) for the exact URL of ``path``."""
    payload = claims(at=time.time(), **{"iss": ISS, "aud": aud(path), **overrides})
    return mint(key, payload)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": bearer(token)}


def feedback_body(card_uuid: str) -> dict[str, Any]:
    return {
        "feedback": [
            {
                "card": card_uuid,
                "outcome": "overridden",
                "overrideReason": {"userComment": "discussed with the team"},
                "outcomeTimestamp": "2026-11-20T12:05:00Z",
            }
        ]
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _assert_bare_401(response: Any) -> None:
    """401 with a fixed body: nothing in it says which check failed."""
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body == {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "login", "diagnostics": "authentication required"}],
    }


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    return new_ec_key("ehr-ec-1")


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return new_rsa_key("ehr-rsa-1")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cds.sqlite3'}"


@pytest.fixture
def open_store(database_url: str) -> Iterator[Callable[[], Store]]:
    """Opens Stores on one SQLite file (one per simulated worker); closes them all afterwards."""
    opened: list[Store] = []

    def open_one() -> Store:
        store = Store.open(database_url)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def ehr(ec_key: SigningKey, rsa_key: SigningKey) -> TrustedClient:
    return TrustedClient(iss=ISS, jwks={"keys": [ec_key.public_jwk(), rsa_key.public_jwk()]})


AppFactory = Callable[..., TestClient]


@pytest.fixture
def make_app(open_store: Callable[[], Store], ehr: TrustedClient) -> AppFactory:
    """One app instance (a worker): its own Store on the shared database, its own verifier."""

    def build(*, replay_cache: Any = None, **setting_overrides: Any) -> TestClient:
        store = open_store()
        service = make_service(store=store, settings=settings(**setting_overrides))
        verifier = TrustVerifier([ehr], replay_cache=replay_cache or store)
        return TestClient(create_app(service, authenticator=verifier.verify))

    return build


@pytest.fixture
def client(make_app: AppFactory) -> TestClient:
    return make_app()


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    configure_logging("INFO")
    capsys.readouterr()

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]

    yield lines
    configure_logging("INFO")


# --- accepted tokens ------------------------------------------------------------------------


def test_es384_token_is_accepted_on_discovery_hook_and_feedback(
    client: TestClient, ec_key: SigningKey
) -> None:
    discovery = client.get(DISCOVERY, headers=auth(token_for(ec_key, DISCOVERY)))
    assert discovery.status_code == 200
    assert {s["id"] for s in discovery.json()["services"]} >= {"mg-patient-view"}

    hook = client.post(
        HOOK,
        json=hook_request(observations=[magnesium(1.1)]),
        headers=auth(token_for(ec_key, HOOK)),
    )
    assert hook.status_code == 200
    (card,) = hook.json()["cards"]
    assert card["indicator"] == "critical"

    feedback = client.post(
        FEEDBACK, json=feedback_body(card["uuid"]), headers=auth(token_for(ec_key, FEEDBACK))
    )
    assert feedback.status_code == 200
    assert feedback.json() == {}


def test_rs384_token_is_accepted(client: TestClient, rsa_key: SigningKey) -> None:
    response = client.post(HOOK, json=hook_request(), headers=auth(token_for(rsa_key, HOOK)))
    assert response.status_code == 200


def test_aud_as_an_array_containing_the_url_is_accepted(
    client: TestClient, ec_key: SigningKey
) -> None:
    token = token_for(ec_key, HOOK, aud=["https://other.example.org", aud(HOOK)])
    assert client.post(HOOK, json=hook_request(), headers=auth(token)).status_code == 200


def test_accepted_calls_log_iss_and_jti_on_the_pipeline_lines(
    client: TestClient, ec_key: SigningKey, json_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    jti_hook, jti_feedback = str(uuid.uuid4()), str(uuid.uuid4())
    hook = client.post(
        HOOK,
        json=hook_request(observations=[magnesium(1.1)]),
        headers=auth(token_for(ec_key, HOOK, jti=jti_hook)),
    )
    card_uuid = hook.json()["cards"][0]["uuid"]
    client.post(
        FEEDBACK,
        json=feedback_body(card_uuid),
        headers=auth(token_for(ec_key, FEEDBACK, jti=jti_feedback)),
    )
    client.post(HOOK, json=hook_request())  # no token: nothing of the previous caller is left

    lines = json_logs()
    (evaluated,) = [line for line in lines if line["event"] == "hook.evaluated"]
    assert evaluated["iss"] == ISS
    assert evaluated["jti"] == jti_hook
    (stored,) = [line for line in lines if line["event"] == "feedback.stored"]
    assert stored["iss"] == ISS
    assert stored["jti"] == jti_feedback
    (rejected,) = [line for line in lines if line["event"] == "auth.rejected"]
    assert rejected["reason"] == "missing-token"
    assert "iss" not in rejected and "jti" not in rejected


# --- refused tokens -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token_path", "called_path", "method"),
    [
        (DISCOVERY, HOOK, "post"),  # the discovery URL used on a hook
        (HOOK, FEEDBACK, "post"),  # the hook's token replayed against its feedback endpoint
        (HOOK, "/cds-services/mg-order-sign", "post"),  # another service of this server
        (HOOK, DISCOVERY, "get"),
    ],
)
def test_wrong_audience_is_401_without_a_reason(
    client: TestClient,
    ec_key: SigningKey,
    json_logs: Callable[[], list[dict[str, Any]]],
    token_path: str,
    called_path: str,
    method: str,
) -> None:
    headers = auth(token_for(ec_key, token_path))
    if method == "get":
        response = client.get(called_path, headers=headers)
    else:
        response = client.post(called_path, json=hook_request(), headers=headers)
    _assert_bare_401(response)
    assert "aud" not in response.text
    reasons = [line["reason"] for line in json_logs() if line["event"] == "auth.rejected"]
    assert reasons == ["bad-aud"], "the reason is logged, not sent"


@pytest.mark.parametrize(
    "wrong_aud",
    [
        "http://cds.example.org/cds-services/mg-patient-view",  # scheme
        "https://cds.example.org/cds-services/mg-patient-view/",  # trailing slash
        "https://cds.example.org:443/cds-services/mg-patient-view",  # not the exact string
        "https://other.example.org/cds-services/mg-patient-view",  # another host
        "https://cds.example.org",  # the base URL alone
    ],
)
def test_aud_must_be_the_exact_url(client: TestClient, ec_key: SigningKey, wrong_aud: str) -> None:
    token = mint(ec_key, claims(at=time.time(), iss=ISS, aud=wrong_aud))
    _assert_bare_401(client.post(HOOK, json=hook_request(), headers=auth(token)))


def test_missing_token_is_401(client: TestClient) -> None:
    _assert_bare_401(client.get(DISCOVERY))
    _assert_bare_401(client.post(HOOK, json=hook_request()))
    _assert_bare_401(client.post(FEEDBACK, json=feedback_body(str(uuid.uuid4()))))


def _tampered(token: str) -> str:
    """The same signature over a payload whose aud was changed to this very URL."""
    header, payload, signature = token.split(".")
    claims_ = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims_["aud"] = aud(HOOK)
    claims_["jti"] = str(uuid.uuid4())
    return f"{header}.{_b64(json.dumps(claims_).encode())}.{signature}"


def _bad_tokens(ec_key: SigningKey, rsa_key: SigningKey) -> dict[str, str]:
    now = time.time()
    good = claims(at=now, iss=ISS, aud=aud(HOOK))
    header_b64 = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": ec_key.kid}).encode())
    unsigned = f"{header_b64}.{_b64(json.dumps(good).encode())}."
    # The classic key confusion: HMAC "signed" with the public key's PEM as the secret.
    pem = ec_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hmac_header = {"alg": "HS256", "typ": "JWT", "kid": ec_key.kid}
    signing_input = f"{_b64(json.dumps(hmac_header).encode())}.{_b64(json.dumps(good).encode())}"
    hmac_sig = _b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())
    impostor = SigningKey(new_ec_key().private, ec_key.kid, "ES384")  # same kid, other key
    return {
        "alg-none": unsigned,
        "hmac-key-confusion": f"{signing_input}.{hmac_sig}",
        "other-key-same-kid": mint(impostor, claims(at=now, iss=ISS, aud=aud(HOOK))),
        "unknown-kid": mint(SigningKey(ec_key.private, "nope", "ES384"), good),
        "unknown-iss": mint(ec_key, claims(at=now, iss="https://evil.example", aud=aud(HOOK))),
        "expired": mint(ec_key, claims(at=now - 3600, iss=ISS, aud=aud(HOOK))),
        "issued-in-the-future": mint(ec_key, claims(at=now + 3600, iss=ISS, aud=aud(HOOK))),
        "not-yet-valid": mint(ec_key, claims(at=now, iss=ISS, aud=aud(HOOK), nbf=int(now) + 600)),
        "no-jti": mint(ec_key, claims(at=now, iss=ISS, aud=aud(HOOK), jti=None)),
        "no-exp": mint(ec_key, claims(at=now, iss=ISS, aud=aud(HOOK), exp=None)),
        "jku-not-allowlisted": mint(ec_key, good, jku="https://evil.example/jwks.json"),
        "rs256-not-configured": mint(SigningKey(rsa_key.private, rsa_key.kid, "RS256"), good),
        "tampered-payload": _tampered(mint(ec_key, good)),
        "garbage": "not-a-jwt",
    }


def test_every_refused_token_gets_the_same_bare_401(
    client: TestClient, ec_key: SigningKey, rsa_key: SigningKey
) -> None:
    bodies = set()
    for name, token in _bad_tokens(ec_key, rsa_key).items():
        response = client.post(HOOK, json=hook_request(), headers=auth(token))
        assert response.status_code == 401, name
        _assert_bare_401(response)
        bodies.add(response.content)
    response = client.post(HOOK, json=hook_request(), headers={"Authorization": "Basic dTpw"})
    _assert_bare_401(response)
    bodies.add(response.content)
    bodies.add(client.post(HOOK, json=hook_request()).content)
    assert len(bodies) == 1


# --- replay ---------------------------------------------------------------------------------


def test_replayed_jti_is_401(client: TestClient, ec_key: SigningKey) -> None:
    token = token_for(ec_key, HOOK)
    assert client.post(HOOK, json=hook_request(), headers=auth(token)).status_code == 200
    _assert_bare_401(client.post(HOOK, json=hook_request(), headers=auth(token)))


def test_same_jti_in_a_new_token_is_still_a_replay(client: TestClient, ec_key: SigningKey) -> None:
    jti = str(uuid.uuid4())
    first = token_for(ec_key, HOOK, jti=jti)
    second = token_for(ec_key, HOOK, jti=jti, iat=int(time.time()) + 1)
    assert first != second
    assert client.post(HOOK, json=hook_request(), headers=auth(first)).status_code == 200
    _assert_bare_401(client.post(HOOK, json=hook_request(), headers=auth(second)))


def test_replay_to_another_worker_on_the_same_database_is_401(
    make_app: AppFactory, ec_key: SigningKey
) -> None:
    worker_a, worker_b = make_app(), make_app()
    token = token_for(ec_key, HOOK)
    assert worker_a.post(HOOK, json=hook_request(), headers=auth(token)).status_code == 200
    _assert_bare_401(worker_b.post(HOOK, json=hook_request(), headers=auth(token)))
    _assert_bare_401(worker_a.post(HOOK, json=hook_request(), headers=auth(token)))
    # and the other way round
    other = token_for(ec_key, HOOK)
    assert worker_b.post(HOOK, json=hook_request(), headers=auth(other)).status_code == 200
    _assert_bare_401(worker_a.post(HOOK, json=hook_request(), headers=auth(other)))


def test_a_token_refused_for_its_audience_does_not_use_up_its_jti(
    client: TestClient, ec_key: SigningKey
) -> None:
    token = token_for(ec_key, HOOK)
    _assert_bare_401(client.get(DISCOVERY, headers=auth(token)))
    assert client.post(HOOK, json=hook_request(), headers=auth(token)).status_code == 200


# --- CORS -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [DISCOVERY, HOOK, FEEDBACK])
def test_cors_preflight_needs_no_token(make_app: AppFactory, path: str) -> None:
    client = make_app(cors_origins=[EHR_ORIGIN])
    response = client.options(
        path,
        headers={
            "Origin": EHR_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == EHR_ORIGIN
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


def test_cors_is_closed_by_default_under_jwt(make_app: AppFactory, ec_key: SigningKey) -> None:
    client = make_app()
    preflight = client.options(
        HOOK, headers={"Origin": EHR_ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers
    response = client.get(
        DISCOVERY, headers={"Origin": EHR_ORIGIN, **auth(token_for(ec_key, DISCOVERY))}
    )
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


# --- the replay cache's database failing ----------------------------------------------------


class FailingReplayCache:
    def first_use(self, iss: str, jti: str, expires_at: float) -> bool:
        raise OperationalError("INSERT INTO seen_jti ...", {}, sqlite3.OperationalError("locked"))


def _assert_503(response: Any) -> None:
    assert response.status_code == 503
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "transient"


def test_replay_cache_failure_is_503_not_500(
    make_app: AppFactory, ec_key: SigningKey, json_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    client = make_app(replay_cache=FailingReplayCache())
    _assert_503(client.post(HOOK, json=hook_request(), headers=auth(token_for(ec_key, HOOK))))
    _assert_503(client.get(DISCOVERY, headers=auth(token_for(ec_key, DISCOVERY))))
    events = [line for line in json_logs() if line["event"] == "auth.unavailable"]
    assert [line["error"] for line in events] == ["OperationalError", "OperationalError"]
    # a bad token is still a 401: the database is only asked about good ones
    _assert_bare_401(client.post(HOOK, json=hook_request()))


def test_replay_table_gone_from_the_real_store_is_503(
    client: TestClient, database_url: str, ec_key: SigningKey
) -> None:
    assert client.post(HOOK, json=hook_request(), headers=auth(token_for(ec_key, HOOK))).status_code
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
        connection.execute("DROP TABLE seen_jti")
    _assert_503(client.post(HOOK, json=hook_request(), headers=auth(token_for(ec_key, HOOK))))


# --- bootstrap: CDS_AUTH_MODE=jwt with a trust file -------------------------------------------


def test_bootstrap_with_a_trust_file_accepts_a_good_token_and_rejects_a_bad_one(
    tmp_path: Path, ec_key: SigningKey, rsa_key: SigningKey
) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "ehr.jwks.json").write_text(json.dumps(ec_key.jwks()))
    trust_file = tmp_path / "trust.yaml"
    trust_file.write_text(
        f"clients:\n"
        f"  - iss: {ISS}\n"
        f"    jwks_file: keys/ehr.jwks.json\n"
        f"    algorithms: [ES384]\n"
        f"    description: the EHR under test\n"
    )
    app = build_app(
        settings(
            auth_mode="jwt",
            trust_file=trust_file,
            database_url=f"sqlite:///{tmp_path / 'boot.sqlite3'}",
            cors_origins=[EHR_ORIGIN],
        )
    )
    with TestClient(app) as client:
        good = client.post(
            HOOK,
            json=hook_request(observations=[magnesium(1.1)]),
            headers=auth(token_for(ec_key, HOOK)),
        )
        assert good.status_code == 200
        assert good.json()["cards"][0]["indicator"] == "critical"

        untrusted_key = SigningKey(new_ec_key().private, ec_key.kid, "ES384")
        _assert_bare_401(
            client.post(HOOK, json=hook_request(), headers=auth(token_for(untrusted_key, HOOK)))
        )
        # RS384 is not in this client's algorithms, and its key is not in the pinned set
        _assert_bare_401(
            client.post(HOOK, json=hook_request(), headers=auth(token_for(rsa_key, HOOK)))
        )
        _assert_bare_401(client.get(DISCOVERY))

        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["auth"] == "jwt"
        assert "warning" not in ready.json()
        # the demo FHIR endpoint is never mounted with auth on
        assert client.get("/demo/fhir/metadata").status_code in (401, 404)


def test_bootstrap_refuses_jwt_mode_without_a_trust_file(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="CDS_TRUST_FILE"):
        build_app(settings(auth_mode="jwt", database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}"))


def test_jwt_helper_tokens_really_are_es384(ec_key: SigningKey) -> None:
    header = jwt.get_unverified_header(token_for(ec_key, HOOK))
    assert header["alg"] == "ES384" and header["kid"] == ec_key.kid
