"""Helpers for the trust tests: real keys, a token minter, a JWKS endpoint, a settable clock."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from cds_service.trust import MemoryReplayCache, TrustedClient, TrustVerifier

NOW = 1_800_000_000.0
AUDIENCE = "https://cds.example.org/cds-services/mg-patient-view"
EHR_ISS = "https://ehr.example.org/fhir"


@dataclass
class Clock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class SigningKey:
    private: Any
    kid: str
    alg: str

    def public_jwk(self) -> dict[str, Any]:
        algorithm = ECAlgorithm if self.alg.startswith("ES") else RSAAlgorithm
        jwk: dict[str, Any] = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}


def new_ec_key(kid: str = "ec-1") -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP384R1()), kid, "ES384")


def new_rsa_key(kid: str = "rsa-1") -> SigningKey:
    return SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=2048), kid, "RS384")


def claims(at: float = NOW, **overrides: Any) -> dict[str, Any]:
    """Valid CDS Hooks claims issued at ``at``; an override of None removes that claim."""
    base: dict[str, Any] = {
        "iss": EHR_ISS,
        "aud": AUDIENCE,
        "exp": int(at) + 300,
        "iat": int(at),
        "jti": str(uuid.uuid4()),
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def mint(key: SigningKey, payload: dict[str, Any] | None = None, **header: Any) -> str:
    headers = {"typ": "JWT", "kid": key.kid, **header}
    return jwt.encode(payload or claims(), key.private, algorithm=key.alg, headers=headers)


def bearer(token: str) -> str:
    return f"Bearer {token}"


@dataclass
class JwksServer:
    """Serves ``documents[path]`` as JSON; records every request path it saw."""

    base_url: str
    documents: dict[str, Any] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)

    def url(self, path: str = "/jwks.json") -> str:
        return self.base_url + path

    def hits_for(self, path: str = "/jwks.json") -> int:
        return self.hits.count(path)


def handler_for(server: JwksServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.hits.append(self.path)
            document = server.documents.get(self.path)
            body = json.dumps(document).encode() if document is not None else b"{}"
            self.send_response(200 if document is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def make_verifier(clock: Clock, *clients: TrustedClient) -> TrustVerifier:
    return TrustVerifier(clients, replay_cache=MemoryReplayCache(clock), clock=clock)
