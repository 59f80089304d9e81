"""Verifying a CDS client's bearer JWT per CDS Hooks 2.0.1 (Trusting CDS Clients)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.exceptions import (
    DecodeError,
    InvalidAlgorithmError,
    InvalidKeyError,
    InvalidSignatureError,
    PyJWTError,
)
from jwt.types import Options

from .. import metrics
from .._logging import get_logger
from ._errors import AuthenticationFailed
from ._jwks import JwksFetcher, RemoteKeySets, RequestsJwksFetcher
from ._keys import ALLOWED_ALGORITHMS, KeySet, PublicKey
from ._models import TrustedClient, VerifiedCaller
from ._replay import ReplayCache

_log = get_logger(__name__)

# Far above any real CDS Hooks JWT (a few hundred bytes); bounds the work a stranger can cause.
_MAX_TOKEN_CHARS = 16 * 1024
_LOGGED_CLAIM_CHARS = 128

# Signature only: PyJWT's own time checks use the wall clock, ours use the injected one.
_SIGNATURE_ONLY: Options = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
}


@dataclass(frozen=True, slots=True)
class _Client:
    config: TrustedClient
    pinned: KeySet


@dataclass(frozen=True, slots=True)
class _Header:
    alg: str
    kid: str
    jku: str | None


def _bearer_token(authorization_header: str | None) -> str:
    if authorization_header is None or not authorization_header.strip():
        raise AuthenticationFailed("missing-token")
    scheme, _, token = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthenticationFailed("bad-scheme")
    token = token.strip()
    if not token:
        raise AuthenticationFailed("missing-token")
    if len(token) > _MAX_TOKEN_CHARS or any(c.isspace() for c in token):
        raise AuthenticationFailed("malformed-token")
    return token


def _read_header(token: str, require_typ: bool) -> _Header:
    try:
        header = jwt.get_unverified_header(token)
    except PyJWTError as exc:
        raise AuthenticationFailed("malformed-token") from exc
    alg = header.get("alg")
    # Before anything else: "none" and HMAC never get as far as choosing a key.
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
        raise AuthenticationFailed("bad-alg")
    typ = header.get("typ")
    if typ is None:
        if require_typ:  # CDS Hooks 2.0.1: typ is required, fixed value "JWT"
            raise AuthenticationFailed("missing-typ")
    elif not isinstance(typ, str) or typ.upper() != "JWT":
        raise AuthenticationFailed("bad-typ")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise AuthenticationFailed("missing-kid")
    jku = header.get("jku")
    if jku is not None and not isinstance(jku, str):
        raise AuthenticationFailed("jku-not-allowed")
    return _Header(alg=alg, kid=kid, jku=jku)


def _unverified_iss(token: str) -> str:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except PyJWTError as exc:
        raise AuthenticationFailed("malformed-token") from exc
    iss = claims.get("iss")
    if not isinstance(iss, str) or not iss:
        raise AuthenticationFailed("unknown-iss")
    return iss


def _verified_claims(token: str, key: PublicKey, alg: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(token, key, algorithms=[alg], options=_SIGNATURE_ONLY)
    except InvalidSignatureError as exc:
        raise AuthenticationFailed("bad-signature") from exc
    except (InvalidAlgorithmError, InvalidKeyError) as exc:
        raise AuthenticationFailed("bad-alg") from exc
    except (DecodeError, PyJWTError) as exc:
        raise AuthenticationFailed("malformed-token") from exc
    return claims


def _time_claim(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AuthenticationFailed(f"bad-{name}")
    return float(value)


def _required_time_claim(claims: Mapping[str, Any], name: str) -> float:
    value = _time_claim(claims, name)
    if value is None:
        raise AuthenticationFailed(f"missing-{name}")
    return value


def _string_claim(claims: Mapping[str, Any], name: str) -> str | None:
    """An optional string claim; any other type is treated as absent, as unknown claims are."""
    value = claims.get(name)
    return value if isinstance(value, str) else None


def _check_audience(claims: Mapping[str, Any], audience: str) -> None:
    aud = claims.get("aud")
    if aud is None:
        raise AuthenticationFailed("missing-aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or audience not in audiences:
        raise AuthenticationFailed("bad-aud")


def _truncated(value: str) -> str:
    return value[:_LOGGED_CLAIM_CHARS]


class TrustVerifier:
    """Checks ``Authorization: Bearer <JWT>`` for the exact URL called; raises on any failure.

    Thread-safe. May block on a ``jku`` fetch (``timeout`` 2 s by default) when a key set is
    first needed, after an hour, or on an unknown ``kid``: call it from a worker thread.

    ``require_typ``: a token without a ``typ`` header is refused (it is always refused when
    ``typ`` is anything but ``JWT``). ``max_lifetime_s``: a token whose ``exp - iat`` is longer
    is refused, which also bounds how long its ``jti`` is remembered.
    """

    def __init__(
        self,
        clients: Iterable[TrustedClient],
        *,
        replay_cache: ReplayCache,
        jwks_fetcher: JwksFetcher | None = None,
        clock: Callable[[], float] = time.time,
        leeway_s: int = 60,
        jwks_ttl_s: float = 3600.0,
        jwks_min_refetch_interval_s: float = 30.0,
        require_typ: bool = True,
        max_lifetime_s: float = 3600.0,
    ) -> None:
        if max_lifetime_s <= 0:
            raise ValueError("max_lifetime_s must be positive")
        self._require_typ = require_typ
        self._max_lifetime_s = max_lifetime_s
        self._clients: dict[str, _Client] = {}
        for client in clients:
            if client.iss in self._clients:
                raise ValueError(f"two trusted clients share the iss {client.iss!r}")
            pinned = KeySet.lenient(client.jwks) if client.jwks is not None else KeySet()
            self._clients[client.iss] = _Client(config=client, pinned=pinned)
        self._replay_cache = replay_cache
        self._clock = clock
        self._leeway_s = leeway_s
        self._remote = RemoteKeySets(
            jwks_fetcher or RequestsJwksFetcher(),
            clock,
            ttl_s=jwks_ttl_s,
            min_refetch_interval_s=jwks_min_refetch_interval_s,
        )

    def verify(self, authorization_header: str | None, audience: str) -> VerifiedCaller:
        seen: dict[str, str] = {}
        try:
            caller = self._verify(authorization_header, audience, seen)
        except AuthenticationFailed as exc:
            metrics.AUTH_FAILURES.inc()
            _log.warning("auth.rejected", reason=exc.reason, **seen)
            raise
        _log.debug("auth.accepted", iss=caller.iss, jti=_truncated(caller.jti), kid=caller.kid)
        return caller

    def _verify(
        self, authorization_header: str | None, audience: str, seen: dict[str, str]
    ) -> VerifiedCaller:
        token = _bearer_token(authorization_header)
        header = _read_header(token, self._require_typ)
        seen["kid"] = _truncated(header.kid)
        client = self._client_for(_unverified_iss(token), seen)
        if header.alg not in client.config.algorithms:
            raise AuthenticationFailed("bad-alg")
        claims = _verified_claims(token, self._key_for(client, header), header.alg)
        jti = claims.get("jti")
        if isinstance(jti, str):
            seen["jti"] = _truncated(jti)
        expires_at = self._check_times(claims)
        _check_audience(claims, audience)
        tenant = self._check_tenant(client.config, claims)
        if not isinstance(jti, str) or not jti:
            raise AuthenticationFailed("missing-jti")
        # Last, so that a token refused for another reason does not use up its jti.
        if not self._replay_cache.first_use(client.config.iss, jti, expires_at):
            raise AuthenticationFailed("replayed-jti")
        return VerifiedCaller(
            iss=client.config.iss,
            sub=_string_claim(claims, "sub"),
            jti=jti,
            tenant=tenant,
            kid=header.kid,
            alg=header.alg,
            fhir_servers=client.config.fhir_servers,
        )

    def _client_for(self, iss: str, seen: dict[str, str]) -> _Client:
        client = self._clients.get(iss)
        if client is None:
            seen["claimed_iss"] = _truncated(iss)
            raise AuthenticationFailed("unknown-iss")
        seen["iss"] = iss
        return client

    def _key_for(self, client: _Client, header: _Header) -> PublicKey:
        allowlist = client.config.jku
        if header.jku is not None and header.jku not in allowlist:
            raise AuthenticationFailed("jku-not-allowed")
        pinned = client.pinned.find(header.kid, header.alg)
        if pinned is not None:
            return pinned
        unavailable = False
        for url in (header.jku,) if header.jku is not None else allowlist:
            lookup = self._remote.find(url, header.kid, header.alg)
            if lookup.key is not None:
                return lookup.key
            unavailable = unavailable or lookup.unavailable
        raise AuthenticationFailed("jwks-unavailable" if unavailable else "unknown-kid")

    def _check_times(self, claims: Mapping[str, Any]) -> float:
        """Check exp, iat, nbf (with leeway) and the lifetime; returns when the token stops
        being acceptable, which is how long its jti must be remembered: at most the maximum
        lifetime (plus leeway) after ``iat``."""
        now = self._clock()
        exp = _required_time_claim(claims, "exp")
        iat = _required_time_claim(claims, "iat")
        nbf = _time_claim(claims, "nbf")
        if exp - iat > self._max_lifetime_s:
            raise AuthenticationFailed("lifetime-too-long")
        if exp <= now - self._leeway_s:
            raise AuthenticationFailed("expired")
        if iat > now + self._leeway_s:
            raise AuthenticationFailed("iat-in-future")
        if nbf is not None and nbf > now + self._leeway_s:
            raise AuthenticationFailed("not-yet-valid")
        return min(exp, iat + self._max_lifetime_s) + self._leeway_s

    def _check_tenant(self, client: TrustedClient, claims: Mapping[str, Any]) -> str | None:
        tenant = _string_claim(claims, "tenant")
        if client.tenants is not None and tenant not in client.tenants:
            raise AuthenticationFailed("tenant-not-allowed")
        return tenant
