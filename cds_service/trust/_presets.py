"""Predefined clients a trust file can name with ``preset:``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
# The public half of the key in the cds-hooks/sandbox repository (keys/jwk-keypair.json,
# served at SANDBOX_JKU). Its private half is published in the same repository.
SANDBOX_JWKS: Mapping[str, Any] = MappingProxyType(
    {
        "keys": [
            {
                "kty": "EC",
                "use": "sig",
                "crv": "P-384",
                "kid": "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f",
                "x": "dw_JGR8nB2I6XveNxUOl2qk699ZPLM2nYI5STSdiEl9avAkrm3CkfYMbrrjr8laB",
                "y": "Sm3mLE-n1zYNla_aiE3cb3nZsL51RbC7ysw3q8aJLxGm-hx79RPMYpITDjp7kgzy",
                "alg": "ES384",
            }
        ]
    }
)
SANDBOX_WARNING = (
    "cds-hooks-sandbox trust preset: the sandbox's private key is public; development only"
)


@dataclass(frozen=True, slots=True)
class Preset:
    """A client template. ``placeholder`` presets must have ``iss`` and ``jku`` set per site.

    ``fhir_servers_from_iss``: unless the trust file lists ``fhir_servers``, the client may send
    only ``fhirServer`` values under its ``iss`` (for EHRs whose issuer is their FHIR base).
    ``profile``: the client's profile fields (a ``profile:`` block of the trust file), which the
    trust file's own ``profile:`` block overrides field by field. The README says where each
    value comes from.
    """

    iss: str
    algorithms: tuple[str, ...]
    jku: tuple[str, ...] = ()
    jwks: Mapping[str, Any] | None = None
    warning: str | None = None
    placeholder: bool = False
    fhir_servers_from_iss: bool = False
    profile: Mapping[str, Any] | None = None


PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "cds-hooks-sandbox": Preset(
            iss=SANDBOX_ISS,
            algorithms=("ES384",),
            jku=(SANDBOX_JKU,),
            jwks=SANDBOX_JWKS,
            warning=SANDBOX_WARNING,
        ),
        # Epic signs with RS384 and names its key set in the token's jku, under the
        # organisation's interconnect base URL; the health system supplies both values.
        # Its iss is the organisation's FHIR R4 base, the same URL it sends as fhirServer, so
        # fhir_servers defaults to the iss: a fhirServer anywhere else is refused (412).
        "epic-example": Preset(
            iss="https://epic.example.invalid/interconnect-fhir-oauth/api/FHIR/R4",
            algorithms=("RS384",),
            jku=("https://epic.example.invalid/interconnect-fhir-oauth/.well-known/jwks.json",),
            placeholder=True,
            fhir_servers_from_iss=True,
            # The service's defaults, assumed for Epic (no public document says otherwise): the
            # template's _count, _sort sent, every resource type asked for, CDS Hooks 2.0.
            profile=MappingProxyType({"sort": True, "cds_hooks_version": "2.0"}),
        ),
        # Oracle Health (Cerner) signs with ES384 or RS384 and publishes its keys at a jku.
        # Its iss is the tenant's FHIR R4 base (…/r4/<tenant id>), which is also the fhirServer
        # it sends: fhir_servers defaults to the iss, so one tenant's calls cannot point the
        # service at another tenant's or any other server.
        "oracle-health-example": Preset(
            iss="https://oracle-health.example.invalid/r4/tenant-id",
            algorithms=("ES384", "RS384"),
            jku=("https://oracle-health.example.invalid/.well-known/jwks.json",),
            placeholder=True,
            fhir_servers_from_iss=True,
            # Its Millennium R4 API: Observation search takes _count up to 200 and has no _sort
            # (results come newest first); there is no MedicationStatement (home medications
            # are MedicationRequests). Its CDS Hooks client is assumed to speak 1.0.
            profile=MappingProxyType(
                {
                    "page_size": 200,
                    "sort": False,
                    "skip_resources": ("MedicationStatement",),
                    "cds_hooks_version": "1.0",
                }
            ),
        ),
    }
)
