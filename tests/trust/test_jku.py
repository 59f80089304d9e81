"""Key sets fetched from allowlisted jku URLs, served by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from cds_service.trust import (
    AuthenticationFailed,
    JwksFetchError,
    RequestsJwksFetcher,
    TrustedClient,
    TrustVerifier,
)

from .support import (
    AUDIENCE,
    EHR_ISS,
    Clock,
    JwksServer,
    SigningKey,
    bearer,
    claims,
    make_verifier,
    mint,
    new_ec_key,
    new_rsa_key,
)


def _reason(verifier: TrustVerifier, token: str) -> str:
    with pytest.raises(AuthenticationFailed) as caught:
        verifier.verify(bearer(token), AUDIENCE)
    return caught.value.reason


@pytest.fixture
def served(jwks_server: JwksServer, rsa_key: SigningKey) -> JwksServer:
    jwks_server.documents["/jwks.json"] = rsa_key.jwks()
    return jwks_server


@pytest.fixture
def jku_verifier(clock: Clock, served: JwksServer) -> TrustVerifier:
    client = TrustedClient(iss=EHR_ISS, jku=(served.url(),))
    return make_verifier(clock, client)


def test_jku_is_fetched_once_and_cached(
    jku_verifier: TrustVerifier, served: JwksServer, rsa_key: SigningKey
) -> None:
    jku_verifier.verify(bearer(mint(rsa_key, jku=served.url())), AUDIENCE)
    assert served.hits_for() == 1
    jku_verifier.verify(bearer(mint(rsa_key, jku=served.url())), AUDIENCE)
    jku_verifier.verify(bearer(mint(rsa_key)), AUDIENCE)  # no jku header: the allowlist is used
    assert served.hits_for() == 1


def test_cached_key_set_is_refreshed_after_an_hour(
    jku_verifier: TrustVerifier, served: JwksServer, rsa_key: SigningKey, clock: Clock
) -> None:
    jku_verifier.verify(bearer(mint(rsa_key)), AUDIENCE)
    clock.advance(3599)
    jku_verifier.verify(bearer(mint(rsa_key, claims(clock.now))), AUDIENCE)
    assert served.hits_for() == 1
    clock.advance(2)
    jku_verifier.verify(bearer(mint(rsa_key, claims(clock.now))), AUDIENCE)
    assert served.hits_for() == 2


def test_unknown_kid_refreshes_once_for_key_rotation(
    jku_verifier: TrustVerifier, served: JwksServer, rsa_key: SigningKey, clock: Clock
) -> None:
    jku_verifier.verify(bearer(mint(rsa_key)), AUDIENCE)
    rotated = new_rsa_key(kid="rsa-2")
    served.documents["/jwks.json"] = {"keys": [rsa_key.public_jwk(), rotated.public_jwk()]}
    clock.advance(31)
    caller = jku_verifier.verify(bearer(mint(rotated, jku=served.url())), AUDIENCE)
    assert caller.kid == "rsa-2"
    assert served.hits_for() == 2
    jku_verifier.verify(bearer(mint(rotated)), AUDIENCE)
    assert served.hits_for() == 2


def test_unknown_kid_refetch_is_rate_limited(
    jku_verifier: TrustVerifier, served: JwksServer, rsa_key: SigningKey, clock: Clock
) -> None:
    jku_verifier.verify(bearer(mint(rsa_key)), AUDIENCE)
    stranger = new_ec_key(kid="stranger")
    clock.advance(10)
    assert _reason(jku_verifier, mint(stranger)) == "unknown-kid"
    assert _reason(jku_verifier, mint(stranger)) == "unknown-kid"
    assert served.hits_for() == 1, "within 30 s of the last fetch nothing is refetched"
    clock.advance(30)
    assert _reason(jku_verifier, mint(stranger)) == "unknown-kid"
    assert _reason(jku_verifier, mint(stranger)) == "unknown-kid"
    assert served.hits_for() == 2


def test_jku_not_on_the_allowlist_is_never_fetched(
    jku_verifier: TrustVerifier, served: JwksServer, rsa_key: SigningKey
) -> None:
    served.documents["/attacker.json"] = rsa_key.jwks()
    token = mint(rsa_key, jku=served.url("/attacker.json"))
    assert _reason(jku_verifier, token) == "jku-not-allowed"
    assert served.hits == []


def test_jku_header_on_a_pinned_only_client_is_refused_without_fetching(
    clock: Clock, jwks_server: JwksServer, ec_key: SigningKey
) -> None:
    jwks_server.documents["/jwks.json"] = ec_key.jwks()
    checker = make_verifier(clock, TrustedClient(iss=EHR_ISS, jwks=ec_key.jwks()))
    assert _reason(checker, mint(ec_key, jku=jwks_server.url())) == "jku-not-allowed"
    assert jwks_server.hits == []


def test_pinned_key_is_used_before_any_fetch(
    clock: Clock, jwks_server: JwksServer, ec_key: SigningKey
) -> None:
    client = TrustedClient(iss=EHR_ISS, jwks=ec_key.jwks(), jku=(jwks_server.url(),))
    make_verifier(clock, client).verify(bearer(mint(ec_key, jku=jwks_server.url())), AUDIENCE)
    assert jwks_server.hits == []


def test_unreachable_key_set_is_refused_and_not_hammered(
    clock: Clock, jwks_server: JwksServer, rsa_key: SigningKey
) -> None:
    checker = make_verifier(clock, TrustedClient(iss=EHR_ISS, jku=(jwks_server.url("/gone"),)))
    assert _reason(checker, mint(rsa_key)) == "jwks-unavailable"
    assert _reason(checker, mint(rsa_key)) == "jwks-unavailable"
    assert jwks_server.hits_for("/gone") == 1


def test_a_failed_refresh_keeps_the_previous_keys(
    jku_verifier: TrustVerifier, served: JwksServer, rsa_key: SigningKey, clock: Clock
) -> None:
    jku_verifier.verify(bearer(mint(rsa_key)), AUDIENCE)
    del served.documents["/jwks.json"]
    clock.advance(3601)
    jku_verifier.verify(bearer(mint(rsa_key, claims(clock.now))), AUDIENCE)
    assert served.hits_for() == 2


def test_fetched_oct_and_private_keys_are_ignored(
    clock: Clock, jwks_server: JwksServer, ec_key: SigningKey
) -> None:
    leaked = {**ec_key.public_jwk(), "d": "AAAA"}
    oct_key = {"kty": "oct", "kid": "ec-1", "k": "c2VjcmV0"}
    jwks_server.documents["/jwks.json"] = {"keys": [leaked, oct_key]}
    checker = make_verifier(clock, TrustedClient(iss=EHR_ISS, jku=(jwks_server.url(),)))
    assert _reason(checker, mint(ec_key)) == "unknown-kid"


class _BrokenFetcher:
    def __init__(self) -> None:
        self.calls = 0

    def fetch(self, url: str) -> Mapping[str, Any]:
        self.calls += 1
        raise RuntimeError("boom")


def test_any_fetcher_error_becomes_an_authentication_failure(
    clock: Clock, rsa_key: SigningKey
) -> None:
    fetcher = _BrokenFetcher()
    checker = TrustVerifier(
        [TrustedClient(iss=EHR_ISS, jku=("https://ehr.example.org/jwks",))],
        replay_cache=_NeverSeen(),
        jwks_fetcher=fetcher,
        clock=clock,
    )
    assert _reason(checker, mint(rsa_key)) == "jwks-unavailable"
    assert fetcher.calls == 1


class _NeverSeen:
    def first_use(self, iss: str, jti: str, expires_at: float) -> bool:
        return True


# --- the default fetcher ---------------------------------------------------------------------


def test_requests_fetcher_reads_a_key_set(served: JwksServer, rsa_key: SigningKey) -> None:
    assert RequestsJwksFetcher().fetch(served.url()) == rsa_key.jwks()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (None, "HTTP 404"),
        ([1, 2], "not a JSON object"),
        ({"keys": ["x" * 2000]}, "larger than"),
    ],
)
def test_requests_fetcher_failures(jwks_server: JwksServer, document: object, message: str) -> None:
    if document is not None:
        jwks_server.documents["/doc"] = document
    with pytest.raises(JwksFetchError, match=message):
        RequestsJwksFetcher(max_bytes=1000).fetch(jwks_server.url("/doc"))


def test_requests_fetcher_times_out_on_a_dead_port() -> None:
    with pytest.raises(JwksFetchError):
        RequestsJwksFetcher(timeout_s=0.5).fetch("http://127.0.0.1:9/jwks.json")
