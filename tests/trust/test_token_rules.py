"""CDS Hooks 2.0.1 token rules: ``typ`` is ``JWT`` (and required), and a token lives at most an
hour by default, which also bounds how long its ``jti`` is remembered."""

from __future__ import annotations

import jwt
import pytest

from cds_service.trust import AuthenticationFailed, MemoryReplayCache, TrustedClient, TrustVerifier

from .support import AUDIENCE, EHR_ISS, NOW, Clock, SigningKey, bearer, claims, mint


class RecordingReplayCache(MemoryReplayCache):
    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.recorded: list[tuple[str, float]] = []

    def first_use(self, iss: str, jti: str, expires_at: float) -> bool:
        self.recorded.append((jti, expires_at))
        return super().first_use(iss, jti, expires_at)


def _verifier(
    clock: Clock, key: SigningKey, cache: MemoryReplayCache | None = None, **options: object
) -> TrustVerifier:
    client = TrustedClient(iss=EHR_ISS, jwks=key.jwks())
    return TrustVerifier(
        [client],
        replay_cache=cache if cache is not None else MemoryReplayCache(clock),
        clock=clock,
        **options,
    )


def _without_typ(key: SigningKey) -> str:
    # PyJWT adds typ: JWT unless told not to.
    return jwt.encode(
        claims(), key.private, algorithm=key.alg, headers={"kid": key.kid, "typ": None}
    )


def _reason(verifier: TrustVerifier, token: str) -> str:
    with pytest.raises(AuthenticationFailed) as caught:
        verifier.verify(bearer(token), AUDIENCE)
    return caught.value.reason


def test_typ_is_required_by_default(clock: Clock, ec_key: SigningKey) -> None:
    token = _without_typ(ec_key)
    assert "typ" not in jwt.get_unverified_header(token)
    assert _reason(_verifier(clock, ec_key), token) == "missing-typ"


def test_typ_can_be_made_optional(clock: Clock, ec_key: SigningKey) -> None:
    verifier = _verifier(clock, ec_key, require_typ=False)
    assert verifier.verify(bearer(_without_typ(ec_key)), AUDIENCE).iss == EHR_ISS
    # ... but a typ that is present must still be JWT
    assert _reason(verifier, mint(ec_key, typ="at+jwt")) == "bad-typ"


@pytest.mark.parametrize("typ", ["JWS", "at+jwt", "application/jwt+x", 42])
def test_a_typ_other_than_jwt_is_refused(clock: Clock, ec_key: SigningKey, typ: object) -> None:
    assert _reason(_verifier(clock, ec_key), mint(ec_key, typ=typ)) == "bad-typ"


def test_a_lowercase_jwt_typ_is_accepted(clock: Clock, ec_key: SigningKey) -> None:
    # Media type names are case-insensitive (RFC 7515 4.1.9).
    assert _verifier(clock, ec_key).verify(bearer(mint(ec_key, typ="jwt")), AUDIENCE)


def test_a_token_living_longer_than_an_hour_is_refused(clock: Clock, ec_key: SigningKey) -> None:
    verifier = _verifier(clock, ec_key)
    ten_years = claims(exp=int(NOW) + 10 * 365 * 86400)
    assert _reason(verifier, mint(ec_key, ten_years)) == "lifetime-too-long"
    just_over = claims(exp=int(NOW) + 3601)
    assert _reason(verifier, mint(ec_key, just_over)) == "lifetime-too-long"
    one_hour = claims(exp=int(NOW) + 3600)
    assert verifier.verify(bearer(mint(ec_key, one_hour)), AUDIENCE)


def test_the_maximum_lifetime_is_configurable(clock: Clock, ec_key: SigningKey) -> None:
    verifier = _verifier(clock, ec_key, max_lifetime_s=300)
    assert verifier.verify(bearer(mint(ec_key, claims(exp=int(NOW) + 300))), AUDIENCE)
    assert _reason(verifier, mint(ec_key, claims(exp=int(NOW) + 301))) == "lifetime-too-long"
    with pytest.raises(ValueError):
        _verifier(clock, ec_key, max_lifetime_s=0)


def test_a_refused_long_lived_token_leaves_no_jti_behind(clock: Clock, ec_key: SigningKey) -> None:
    cache = RecordingReplayCache(clock)
    verifier = _verifier(clock, ec_key, cache)
    _reason(verifier, mint(ec_key, claims(exp=int(NOW) + 10 * 365 * 86400)))
    assert cache.recorded == [] and len(cache) == 0


def test_a_jti_is_remembered_no_longer_than_the_maximum_lifetime(
    clock: Clock, ec_key: SigningKey
) -> None:
    cache = RecordingReplayCache(clock)
    verifier = _verifier(clock, ec_key, cache)
    token = mint(ec_key, claims(exp=int(NOW) + 3600, jti="j-1"))
    verifier.verify(bearer(token), AUDIENCE)
    [(jti, expires_at)] = cache.recorded
    assert jti == "j-1"
    assert expires_at == NOW + 3600 + 60  # exp plus the leeway, within iat + one hour + leeway
    clock.advance(3600 + 61)
    assert len(cache) == 0
