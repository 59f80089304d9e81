"""TrustVerifier against real ES384/RS384 keys, with pinned key sets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from typing import Any

import jwt
import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cds_service import metrics
from cds_service.trust import (
    AuthenticationFailed,
    MemoryReplayCache,
    TrustedClient,
    TrustVerifier,
    VerifiedCaller,
)

from .support import (
    AUDIENCE,
    EHR_ISS,
    NOW,
    Clock,
    SigningKey,
    bearer,
    claims,
    make_verifier,
    mint,
    new_ec_key,
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hand_signed_hs256(secret: bytes, header: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    """PyJWT refuses to HMAC with a PEM, so the classic key-confusion token is built by hand."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _unsigned(header: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}."


def _failures() -> float:
    return metrics.REGISTRY.get_sample_value("cds_auth_failures_total") or 0.0


@pytest.fixture
def ehr(ec_key: SigningKey, rsa_key: SigningKey) -> TrustedClient:
    return TrustedClient(iss=EHR_ISS, jwks={"keys": [ec_key.public_jwk(), rsa_key.public_jwk()]})


@pytest.fixture
def verifier(clock: Clock, ehr: TrustedClient) -> TrustVerifier:
    return make_verifier(clock, ehr)


def _reason(verifier: TrustVerifier, header: str | None, audience: str = AUDIENCE) -> str:
    with pytest.raises(AuthenticationFailed) as caught:
        verifier.verify(header, audience)
    return caught.value.reason


# --- accepted tokens -------------------------------------------------------------------------


def test_valid_es384_token_passes(verifier: TrustVerifier, ec_key: SigningKey) -> None:
    payload = claims(jti="jti-es384")
    caller = verifier.verify(bearer(mint(ec_key, payload)), AUDIENCE)
    assert caller == VerifiedCaller(
        iss=EHR_ISS, sub=None, jti="jti-es384", tenant=None, kid="ec-1", alg="ES384"
    )


def test_valid_rs384_token_passes(verifier: TrustVerifier, rsa_key: SigningKey) -> None:
    caller = verifier.verify(bearer(mint(rsa_key)), AUDIENCE)
    assert (caller.alg, caller.kid) == ("RS384", "rsa-1")


def test_sub_and_past_nbf_are_tolerated(verifier: TrustVerifier, rsa_key: SigningKey) -> None:
    # Epic sends nbf five minutes before iat, and a sub (its CDS client id).
    payload = claims(sub="client-123", nbf=int(NOW) - 300, extra={"unknown": True})
    caller = verifier.verify(bearer(mint(rsa_key, payload)), AUDIENCE)
    assert caller.sub == "client-123"


def test_aud_may_be_an_array_containing_the_url(
    verifier: TrustVerifier, ec_key: SigningKey
) -> None:
    payload = claims(aud=["https://other.example.org/", AUDIENCE])
    assert verifier.verify(bearer(mint(ec_key, payload)), AUDIENCE).iss == EHR_ISS


def test_scheme_is_case_insensitive(verifier: TrustVerifier, ec_key: SigningKey) -> None:
    assert verifier.verify(f"bearer  {mint(ec_key)} ", AUDIENCE).iss == EHR_ISS


def test_time_checks_allow_sixty_seconds_of_skew(
    verifier: TrustVerifier, ec_key: SigningKey
) -> None:
    late = claims(exp=int(NOW) - 59, iat=int(NOW) - 359)
    early = claims(iat=int(NOW) + 59, nbf=int(NOW) + 59)
    verifier.verify(bearer(mint(ec_key, late)), AUDIENCE)
    verifier.verify(bearer(mint(ec_key, early)), AUDIENCE)


def test_allowed_tenant_passes(clock: Clock, ec_key: SigningKey) -> None:
    client = TrustedClient(iss=EHR_ISS, jwks=ec_key.jwks(), tenants=frozenset({"tenant-a"}))
    caller = make_verifier(clock, client).verify(
        bearer(mint(ec_key, claims(tenant="tenant-a"))), AUDIENCE
    )
    assert caller.tenant == "tenant-a"


# --- refused tokens --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing-token"),
        ("", "missing-token"),
        ("Bearer", "missing-token"),
        ("Bearer   ", "missing-token"),
        ("Basic dXNlcjpwYXNz", "bad-scheme"),
        ("Token abc.def.ghi", "bad-scheme"),
        ("Bearer not-a-jwt", "malformed-token"),
        ("Bearer a.b.c", "malformed-token"),
        ("Bearer " + "a" * 20_000, "malformed-token"),
    ],
)
def test_header_problems(verifier: TrustVerifier, header: str | None, reason: str) -> None:
    assert _reason(verifier, header) == reason


def test_alg_none_is_refused(verifier: TrustVerifier) -> None:
    token = _unsigned({"alg": "none", "typ": "JWT", "kid": "ec-1"}, claims())
    assert _reason(verifier, bearer(token)) == "bad-alg"


def test_hs256_signed_with_the_public_key_pem_is_refused(
    verifier: TrustVerifier, rsa_key: SigningKey
) -> None:
    pem = rsa_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = _hand_signed_hs256(pem, {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, claims())
    assert _reason(verifier, bearer(token)) == "bad-alg"


def test_hmac_is_refused_even_with_an_oct_key_in_the_key_set(
    clock: Clock, ec_key: SigningKey
) -> None:
    secret = b"shared-secret-that-must-never-work"
    oct_key = {"kty": "oct", "kid": "oct-1", "k": _b64(secret), "alg": "HS256"}
    client = TrustedClient(iss=EHR_ISS, jwks={"keys": [oct_key, ec_key.public_jwk()]})
    token = _hand_signed_hs256(secret, {"alg": "HS256", "typ": "JWT", "kid": "oct-1"}, claims())
    assert _reason(make_verifier(clock, client), bearer(token)) == "bad-alg"


def test_a_client_cannot_be_configured_for_hmac_or_none() -> None:
    for algorithm in ("HS256", "none"):
        with pytest.raises(ValueError, match="refused"):
            TrustedClient(iss=EHR_ISS, jku=("https://x.org/k",), algorithms=frozenset({algorithm}))


def test_alg_outside_the_clients_list_is_refused(clock: Clock, ec_key: SigningKey) -> None:
    client = TrustedClient(iss=EHR_ISS, jwks=ec_key.jwks(), algorithms=frozenset({"RS384"}))
    assert _reason(make_verifier(clock, client), bearer(mint(ec_key))) == "bad-alg"


def test_es256_needs_configuring(verifier: TrustVerifier) -> None:
    p256 = SigningKey(ec.generate_private_key(ec.SECP256R1()), "ec-1", "ES256")
    assert _reason(verifier, bearer(mint(p256))) == "bad-alg"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"aud": "https://cds.example.org/cds-services/mg-order-sign"}, "bad-aud"),
        ({"aud": ["https://cds.example.org/", "https://elsewhere.example/"]}, "bad-aud"),
        ({"aud": AUDIENCE + "/"}, "bad-aud"),
        ({"aud": None}, "missing-aud"),
        ({"exp": int(NOW) - 61, "iat": int(NOW) - 400}, "expired"),
        ({"iat": int(NOW) + 61}, "iat-in-future"),
        ({"nbf": int(NOW) + 61}, "not-yet-valid"),
        ({"iss": "https://rogue.example.org"}, "unknown-iss"),
        ({"iss": None}, "unknown-iss"),
        ({"jti": None}, "missing-jti"),
        ({"jti": ""}, "missing-jti"),
        ({"exp": None}, "missing-exp"),
        ({"iat": None}, "missing-iat"),
        ({"exp": "soon"}, "bad-exp"),
        ({"exp": True}, "bad-exp"),
    ],
)
def test_claim_problems(
    verifier: TrustVerifier, ec_key: SigningKey, overrides: dict[str, Any], reason: str
) -> None:
    assert _reason(verifier, bearer(mint(ec_key, claims(**overrides)))) == reason


def test_unknown_kid_is_refused(verifier: TrustVerifier) -> None:
    stranger = new_ec_key(kid="never-configured")
    assert _reason(verifier, bearer(mint(stranger))) == "unknown-kid"


def test_rogue_key_with_a_known_kid_is_refused(verifier: TrustVerifier) -> None:
    rogue = new_ec_key(kid="ec-1")
    assert _reason(verifier, bearer(mint(rogue))) == "bad-signature"


def test_tampered_payload_is_refused(verifier: TrustVerifier, ec_key: SigningKey) -> None:
    header, _, signature = mint(ec_key).split(".")
    forged = _b64(json.dumps(claims(sub="admin")).encode())
    assert _reason(verifier, bearer(f"{header}.{forged}.{signature}")) == "bad-signature"


def test_missing_kid_is_refused(verifier: TrustVerifier, ec_key: SigningKey) -> None:
    token = jwt.encode(claims(), ec_key.private, algorithm="ES384", headers={"typ": "JWT"})
    assert _reason(verifier, bearer(token)) == "missing-kid"


def test_typ_other_than_jwt_is_refused(verifier: TrustVerifier, ec_key: SigningKey) -> None:
    assert _reason(verifier, bearer(mint(ec_key, typ="at+jwt"))) == "bad-typ"


def test_replayed_jti_is_refused(verifier: TrustVerifier, ec_key: SigningKey) -> None:
    token = mint(ec_key)
    verifier.verify(bearer(token), AUDIENCE)
    assert _reason(verifier, bearer(token)) == "replayed-jti"
    other_token_same_jti = mint(ec_key, claims(jti=jwt.decode(token, **_unverified())["jti"]))
    assert _reason(verifier, bearer(other_token_same_jti)) == "replayed-jti"


def _unverified() -> dict[str, Any]:
    return {"options": {"verify_signature": False}}


def test_a_refused_token_does_not_use_up_its_jti(
    verifier: TrustVerifier, ec_key: SigningKey
) -> None:
    jti = str(uuid.uuid4())
    wrong_place = mint(ec_key, claims(jti=jti, aud="https://elsewhere.example/"))
    assert _reason(verifier, bearer(wrong_place)) == "bad-aud"
    verifier.verify(bearer(mint(ec_key, claims(jti=jti))), AUDIENCE)


def test_tenant_not_on_the_allowlist_is_refused(clock: Clock, ec_key: SigningKey) -> None:
    client = TrustedClient(iss=EHR_ISS, jwks=ec_key.jwks(), tenants=frozenset({"tenant-a"}))
    checker = make_verifier(clock, client)
    assert _reason(checker, bearer(mint(ec_key, claims(tenant="tenant-b")))) == (
        "tenant-not-allowed"
    )
    assert _reason(checker, bearer(mint(ec_key))) == "tenant-not-allowed"


def test_keys_of_one_client_never_verify_anothers_tokens(clock: Clock, ec_key: SigningKey) -> None:
    other = new_ec_key(kid="other-1")
    checker = make_verifier(
        clock,
        TrustedClient(iss=EHR_ISS, jwks=ec_key.jwks()),
        TrustedClient(iss="https://other.example.org", jwks=other.jwks()),
    )
    # Signed by the other client's key but claiming to be EHR_ISS.
    assert _reason(checker, bearer(mint(other))) == "unknown-kid"


def test_duplicate_iss_is_a_construction_error(ehr: TrustedClient) -> None:
    with pytest.raises(ValueError, match="share the iss"):
        TrustVerifier([ehr, ehr], replay_cache=MemoryReplayCache())


# --- side effects of a refusal -------------------------------------------------------------


def test_refusal_counts_and_logs_the_reason_without_the_token(
    verifier: TrustVerifier, ec_key: SigningKey
) -> None:
    token = mint(ec_key, claims(jti="jti-logged", aud="https://elsewhere.example/"))
    before = _failures()
    with structlog.testing.capture_logs() as logs:
        assert _reason(verifier, bearer(token)) == "bad-aud"
    assert _failures() == before + 1
    rejected = [entry for entry in logs if entry["event"] == "auth.rejected"]
    assert rejected == [
        {
            "event": "auth.rejected",
            "log_level": "warning",
            "reason": "bad-aud",
            "iss": EHR_ISS,
            "jti": "jti-logged",
            "kid": "ec-1",
        }
    ]
    assert token not in repr(logs)


def test_success_does_not_count_as_a_failure(verifier: TrustVerifier, ec_key: SigningKey) -> None:
    before = _failures()
    verifier.verify(bearer(mint(ec_key)), AUDIENCE)
    assert _failures() == before
