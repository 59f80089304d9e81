"""JWK Sets turned into verification keys, each bound to the algorithms it may verify."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.exceptions import PyJWTError

DEFAULT_ALGORITHMS = frozenset({"ES384", "RS384"})
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHM_BY_CURVE = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
# Asymmetric signatures only: "none" and HMAC (HS*) are never acceptable for CDS Hooks.
ALLOWED_ALGORITHMS = _RSA_ALGORITHMS | frozenset(_EC_ALGORITHM_BY_CURVE.values())
_MIN_RSA_BITS = 2048
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")

PublicKey = RSAPublicKey | EllipticCurvePublicKey


class KeyRejected(ValueError):
    """One JWK cannot be used to verify tokens."""


@dataclass(frozen=True, slots=True)
class VerificationKey:
    kid: str
    algorithms: frozenset[str]
    key: PublicKey


def _check_usage(jwk: Mapping[str, Any]) -> None:
    if jwk.get("use", "sig") != "sig":
        raise KeyRejected(f"'use' is {jwk.get('use')!r}, not 'sig'")
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        raise KeyRejected("'key_ops' does not include 'verify'")
    if any(member in jwk for member in _PRIVATE_MEMBERS):
        raise KeyRejected("contains private key material; publish only the public key")


def _load_ec(jwk: Mapping[str, Any]) -> tuple[PublicKey, frozenset[str]]:
    algorithm = _EC_ALGORITHM_BY_CURVE.get(str(jwk.get("crv")))
    if algorithm is None:
        raise KeyRejected(f"unsupported EC curve {jwk.get('crv')!r}")
    key = ECAlgorithm.from_jwk(dict(jwk))
    if not isinstance(key, EllipticCurvePublicKey):
        raise KeyRejected("not an EC public key")
    return key, frozenset({algorithm})


def _load_rsa(jwk: Mapping[str, Any]) -> tuple[PublicKey, frozenset[str]]:
    key = RSAAlgorithm.from_jwk(dict(jwk))
    if not isinstance(key, RSAPublicKey):
        raise KeyRejected("not an RSA public key")
    if key.key_size < _MIN_RSA_BITS:
        raise KeyRejected(f"RSA key has {key.key_size} bits, fewer than {_MIN_RSA_BITS}")
    return key, _RSA_ALGORITHMS


_LOADERS = {"EC": _load_ec, "RSA": _load_rsa}


def parse_jwk(jwk: object) -> VerificationKey:
    """One JWK as a public verification key, or ``KeyRejected`` saying why it is unusable."""
    if not isinstance(jwk, Mapping):
        raise KeyRejected("a key must be a JSON object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise KeyRejected("'kid' is required: tokens select their key by kid")
    kty = jwk.get("kty")
    if kty == "oct":
        raise KeyRejected("symmetric ('oct') keys are never accepted")
    _check_usage(jwk)
    loader = _LOADERS.get(str(kty))
    if loader is None:
        raise KeyRejected(f"unsupported key type {kty!r} (use EC or RSA)")
    try:
        key, algorithms = loader(jwk)
    except KeyRejected:
        raise
    except (PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise KeyRejected(f"not a valid {kty} public key") from exc
    declared = jwk.get("alg")
    if declared is not None:
        if declared not in algorithms:
            raise KeyRejected(f"'alg' {declared!r} does not fit a {kty} key of this kind")
        algorithms = frozenset({declared})
    return VerificationKey(kid=kid, algorithms=algorithms, key=key)


def jwk_set_members(jwks: object) -> list[object]:
    """The ``keys`` array of a JWK Set, or ``KeyRejected`` if the document is not one."""
    if not isinstance(jwks, Mapping):
        raise KeyRejected("a JWK Set must be a JSON object with a 'keys' array")
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise KeyRejected("a JWK Set needs a 'keys' array")
    return keys


@dataclass(frozen=True, slots=True)
class KeySet:
    keys: tuple[VerificationKey, ...] = ()

    @classmethod
    def lenient(cls, jwks: object) -> KeySet:
        """Every usable key of a JWK Set; unusable ones (oct, private, odd curves) are dropped."""
        usable: list[VerificationKey] = []
        for member in jwk_set_members(jwks):
            try:
                usable.append(parse_jwk(member))
            except KeyRejected:
                continue
        return cls(tuple(usable))

    def find(self, kid: str, algorithm: str) -> PublicKey | None:
        for candidate in self.keys:
            if candidate.kid == kid and algorithm in candidate.algorithms:
                return candidate.key
        return None

    def supports_any(self, algorithms: Iterable[str]) -> bool:
        wanted = frozenset(algorithms)
        return any(candidate.algorithms & wanted for candidate in self.keys)
