"""What the trust configuration holds and what a verified token yields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._keys import ALLOWED_ALGORITHMS, DEFAULT_ALGORITHMS

DEFAULT_CDS_HOOKS_VERSION = "2.0"


@dataclass(frozen=True, slots=True)
class ClientProfile:
    """What the trust file says of how to serve one client (or every caller, for the default).

    ``page_size``: the ``_count`` of fallback searches (None: the service's own);
    ``sort``: whether fallback searches send ``_sort``; ``skip_resources``: resource types the
    client's FHIR server does not have (never asked for); ``cds_hooks_version``: "1.0" or
    "2.0"; ``content``: an overlay folder on top of ``cards/`` (absolute, resolved).
    ``where`` names the block in the trust file, for errors found once the content is loaded.
    """

    page_size: int | None = None
    sort: bool = True
    skip_resources: frozenset[str] = frozenset()
    cds_hooks_version: str = DEFAULT_CDS_HOOKS_VERSION
    content: Path | None = None
    content_label: str = ""
    """``content`` as the trust file names it (relative to the trust file's folder)."""
    where: str = field(default="", compare=False)

    @property
    def is_default(self) -> bool:
        """Says nothing the service does not do anyway: the same as no profile."""
        return self.describe() == "default"

    def describe(self) -> str:
        """A short name for logs and metrics: what differs from the defaults, or "default"."""
        parts = []
        if self.content is not None:
            parts.append(f"content={self.content_label or self.content}")
        if self.page_size is not None:
            parts.append(f"page_size={self.page_size}")
        if not self.sort:
            parts.append("sort=false")
        if self.skip_resources:
            parts.append(f"skip={','.join(sorted(self.skip_resources))}")
        if self.cds_hooks_version != DEFAULT_CDS_HOOKS_VERSION:
            parts.append(f"cds_hooks={self.cds_hooks_version}")
        return " ".join(parts) or "default"


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
    profile: ClientProfile | None = None
    """How this client is served; None: with the default profile."""

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
    default_profile: ClientProfile | None = None
    """For callers whose client has no profile, and for every call with authentication off."""

    def client_profiles(self) -> dict[str, ClientProfile]:
        """The profile of each client that has one, by ``iss``."""
        return {c.iss: c.profile for c in self.clients if c.profile is not None}


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
