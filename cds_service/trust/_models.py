"""What the trust configuration holds and what a verified token yields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._keys import ALLOWED_ALGORITHMS, DEFAULT_ALGORITHMS


@dataclass(frozen=True, slots=True)
class TrustedClient:
    """One CDS client (EHR): its exact ``iss``, where its keys come from, and what it may use.

    ``jwks`` is a pinned JWK Set; ``jku`` the key-set URLs that may be fetched. Both may be
    given (the sandbox preset pins its key and allowlists its URL); at least one is needed.
    ``fhir_servers``: the ``fhirServer`` base URLs this client may send (prefix match); None
    means no list, and then only servers at public addresses are fetched from.
    """

    iss: str
    jwks: Mapping[str, Any] | None = None
    jku: tuple[str, ...] = ()
    algorithms: frozenset[str] = DEFAULT_ALGORITHMS
    tenants: frozenset[str] | None = None
    fhir_servers: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not self.iss:
            raise ValueError("a trusted client needs an iss")
        if self.jwks is None and not self.jku:
            raise ValueError(f"trusted client {self.iss!r} has neither jwks nor jku")
        refused = set(self.algorithms) - ALLOWED_ALGORITHMS
        if refused or not self.algorithms:
            raise ValueError(f"trusted client {self.iss!r}: algorithms {sorted(refused)} refused")


@dataclass(frozen=True, slots=True)
class TrustConfig:
    clients: tuple[TrustedClient, ...]
    source: Path | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class VerifiedCaller:
    """Who called, once the token checked out. ``tenant`` and ``sub`` are optional claims;
    ``fhir_servers`` is the trusted client's list (None: public addresses only)."""

    iss: str
    sub: str | None
    jti: str
    tenant: str | None
    kid: str
    alg: str
    fhir_servers: tuple[str, ...] | None = None
