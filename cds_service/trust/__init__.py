"""Trusting CDS clients: the trust file, and verification of each request's bearer JWT."""

from ._config import load_trust_config
from ._errors import AuthenticationFailed, TrustConfigError
from ._jwks import JwksFetcher, JwksFetchError, RequestsJwksFetcher
from ._keys import ALLOWED_ALGORITHMS, DEFAULT_ALGORITHMS
from ._models import TrustConfig, TrustedClient, VerifiedCaller
from ._presets import PRESETS, SANDBOX_ISS, SANDBOX_JKU, SANDBOX_WARNING
from ._replay import MemoryReplayCache, ReplayCache
from ._verifier import TrustVerifier

__all__ = [
    "ALLOWED_ALGORITHMS",
    "DEFAULT_ALGORITHMS",
    "PRESETS",
    "SANDBOX_ISS",
    "SANDBOX_JKU",
    "SANDBOX_WARNING",
    "AuthenticationFailed",
    "JwksFetchError",
    "JwksFetcher",
    "MemoryReplayCache",
    "ReplayCache",
    "RequestsJwksFetcher",
    "TrustConfig",
    "TrustConfigError",
    "TrustVerifier",
    "TrustedClient",
    "VerifiedCaller",
    "load_trust_config",
]
