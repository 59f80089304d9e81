"""Trusting CDS clients: the trust file, and verification of each request's bearer JWT."""

from ._config import load_trust_config
from ._errors import AuthenticationFailed, TrustConfigError
from ._jwks import JwksFetcher, JwksFetchError, RequestsJwksFetcher
from ._keys import ALLOWED_ALGORITHMS, DEFAULT_ALGORITHMS
from ._models import ClientProfile, TrustConfig, TrustedClient, VerifiedCaller
from ._presets import PRESETS, SANDBOX_ISS, SANDBOX_JKU, SANDBOX_WARNING
from ._profiles import MAX_PAGE_SIZE, PROFILE_FIELDS, REQUIRED_RESOURCES, SKIPPABLE_RESOURCES
from ._replay import MemoryReplayCache, ReplayCache
from ._verifier import TrustVerifier

__all__ = [
    "ALLOWED_ALGORITHMS",
    "DEFAULT_ALGORITHMS",
    "MAX_PAGE_SIZE",
    "PRESETS",
    "PROFILE_FIELDS",
    "REQUIRED_RESOURCES",
    "SANDBOX_ISS",
    "SANDBOX_JKU",
    "SANDBOX_WARNING",
    "SKIPPABLE_RESOURCES",
    "AuthenticationFailed",
    "ClientProfile",
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
