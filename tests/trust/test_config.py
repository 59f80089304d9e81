"""Loading the trust file: YAML and JSON, key files, presets, and precise errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from cds_service.trust import (
    DEFAULT_ALGORITHMS,
    SANDBOX_ISS,
    SANDBOX_JKU,
    SANDBOX_WARNING,
    MemoryReplayCache,
    TrustConfigError,
    TrustedClient,
    TrustVerifier,
    load_trust_config,
)

from .support import (
    AUDIENCE,
    EHR_ISS,
    Clock,
    JwksServer,
    SigningKey,
    bearer,
    claims,
    mint,
)

SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"


def _write(directory: Path, name: str, document: Any) -> Path:
    path = directory / name
    if name.endswith(".json"):
        path.write_text(json.dumps(document))
    else:
        path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _only_client(path: Path) -> TrustedClient:
    (client,) = load_trust_config(path).clients
    return client


# --- good files -----------------------------------------------------------------------------


def test_yaml_with_every_field(tmp_path: Path, ec_key: SigningKey) -> None:
    path = tmp_path / "trust.yaml"
    path.write_text(
        f"""
clients:
  - iss: {EHR_ISS}
    description: main hospital EHR
    jwks: {json.dumps(ec_key.jwks())}
    algorithms: [ES384, ES512]
    tenants: [tenant-a, tenant-b]
  - iss: https://other.example.org
    jku: [https://other.example.org/jwks, http://127.0.0.1:8081/jwks]
"""
    )
    pinned, fetched = load_trust_config(path).clients
    assert pinned.iss == EHR_ISS
    assert pinned.jwks == ec_key.jwks()
    assert pinned.algorithms == {"ES384", "ES512"}
    assert pinned.tenants == frozenset({"tenant-a", "tenant-b"})
    assert fetched.jku == ("https://other.example.org/jwks", "http://127.0.0.1:8081/jwks")
    assert fetched.algorithms == DEFAULT_ALGORITHMS == {"ES384", "RS384"}
    assert fetched.tenants is None and fetched.jwks is None


def test_json_file(tmp_path: Path, rsa_key: SigningKey) -> None:
    path = _write(tmp_path, "trust.json", {"clients": [{"iss": EHR_ISS, "jwks": rsa_key.jwks()}]})
    assert _only_client(path).jwks == rsa_key.jwks()


def test_jwks_file_is_relative_to_the_trust_file(tmp_path: Path, ec_key: SigningKey) -> None:
    (tmp_path / "keys").mkdir()
    _write(tmp_path / "keys", "ehr.jwks.json", ec_key.jwks())
    path = _write(
        tmp_path, "trust.yml", {"clients": [{"iss": EHR_ISS, "jwks_file": "keys/ehr.jwks.json"}]}
    )
    assert _only_client(path).jwks == ec_key.jwks()


def test_a_single_jku_string_is_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.yaml", {"clients": [{"iss": EHR_ISS, "jku": "https://e.org/k"}]})
    assert _only_client(path).jku == ("https://e.org/k",)


def test_loaded_config_drives_the_verifier(
    tmp_path: Path, clock: Clock, jwks_server: JwksServer, rsa_key: SigningKey
) -> None:
    jwks_server.documents["/jwks.json"] = rsa_key.jwks()
    path = _write(tmp_path, "t.yaml", {"clients": [{"iss": EHR_ISS, "jku": [jwks_server.url()]}]})
    verifier = TrustVerifier(
        load_trust_config(path).clients, replay_cache=MemoryReplayCache(clock), clock=clock
    )
    assert verifier.verify(bearer(mint(rsa_key, jku=jwks_server.url())), AUDIENCE).iss == EHR_ISS


# --- presets --------------------------------------------------------------------------------


def test_sandbox_preset_pins_the_key_allowlists_the_jku_and_warns(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.yaml", {"clients": [{"preset": "cds-hooks-sandbox"}]})
    with structlog.testing.capture_logs() as logs:
        client = _only_client(path)
    assert client.iss == SANDBOX_ISS == "https://sandbox.cds-hooks.org"
    assert client.algorithms == {"ES384"}
    assert client.jku == (SANDBOX_JKU,)
    assert client.jwks is not None
    assert [key["kid"] for key in client.jwks["keys"]] == [SANDBOX_KID]
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert [entry["detail"] for entry in warnings] == [SANDBOX_WARNING]
    assert "private key is public; development only" in SANDBOX_WARNING


def _sandbox_signing_key() -> SigningKey:
    # The sandbox's private key as published in cds-hooks/sandbox (keys/jwk-keypair.json):
    # anyone can mint sandbox tokens, which is why the preset is for development only.
    private = ECAlgorithm.from_jwk(
        {
            "kty": "EC",
            "crv": "P-384",
            "d": "yOcYl9QzMKnBFUiPZKBijDV_lsEtn6oWFVOqtFyXbY_-V63WCBYYdxsLo9Pclr84",
            "x": "dw_JGR8nB2I6XveNxUOl2qk699ZPLM2nYI5STSdiEl9avAkrm3CkfYMbrrjr8laB",
            "y": "Sm3mLE-n1zYNla_aiE3cb3nZsL51RbC7ysw3q8aJLxGm-hx79RPMYpITDjp7kgzy",
        }
    )
    return SigningKey(private, SANDBOX_KID, "ES384")


class _RefusingFetcher:
    def fetch(self, url: str) -> dict[str, Any]:
        raise AssertionError(f"the pinned sandbox key should have been used, not {url}")


def test_a_sandbox_token_verifies_with_the_pinned_key_without_fetching(
    tmp_path: Path, clock: Clock
) -> None:
    path = _write(tmp_path, "t.yaml", {"clients": [{"preset": "cds-hooks-sandbox"}]})
    verifier = TrustVerifier(
        load_trust_config(path).clients,
        replay_cache=MemoryReplayCache(clock),
        jwks_fetcher=_RefusingFetcher(),
        clock=clock,
    )
    # Header and claims shaped exactly as the sandbox's jwt-generator sends them.
    token = mint(_sandbox_signing_key(), claims(iss=SANDBOX_ISS), jku=SANDBOX_JKU)
    caller = verifier.verify(bearer(token), AUDIENCE)
    assert (caller.iss, caller.kid, caller.alg) == (SANDBOX_ISS, SANDBOX_KID, "ES384")


def test_epic_preset_with_site_values(tmp_path: Path) -> None:
    entry = {
        "preset": "epic-example",
        "iss": "https://epic.hospital.org/interconnect-fhir-oauth/api/FHIR/R4",
        "jku": ["https://epic.hospital.org/interconnect-fhir-oauth/jwks"],
        "tenants": ["hospital"],
    }
    with structlog.testing.capture_logs() as logs:
        client = _only_client(_write(tmp_path, "t.yaml", {"clients": [entry]}))
    assert client.iss == entry["iss"]
    assert client.jku == tuple(entry["jku"])
    assert client.algorithms == {"RS384"}
    assert client.jwks is None
    assert client.tenants == frozenset({"hospital"})
    assert not [entry for entry in logs if entry["log_level"] == "warning"]


@pytest.mark.parametrize("name", ["epic-example", "oracle-health-example"])
def test_placeholder_presets_load_but_warn(tmp_path: Path, name: str) -> None:
    with structlog.testing.capture_logs() as logs:
        client = _only_client(_write(tmp_path, "t.yaml", {"clients": [{"preset": name}]}))
    assert client.jku and client.jku[0].startswith("https://")
    assert ".invalid/" in client.iss
    assert [entry["event"] for entry in logs] == ["trust.preset_placeholder", "trust.loaded"]


def test_oracle_health_preset_allows_es384_and_rs384(tmp_path: Path) -> None:
    entry = {
        "preset": "oracle-health-example",
        "iss": "https://fhir-ehr.oracle.example/r4/abc",
        "jku": "https://authorization.oracle.example/jwks",
    }
    client = _only_client(_write(tmp_path, "t.yaml", {"clients": [entry]}))
    assert client.algorithms == {"ES384", "RS384"}
    assert client.jku == ("https://authorization.oracle.example/jwks",)


def test_preset_key_source_override_replaces_the_presets(
    tmp_path: Path, ec_key: SigningKey
) -> None:
    entry = {"preset": "cds-hooks-sandbox", "jwks": ec_key.jwks()}
    client = _only_client(_write(tmp_path, "t.yaml", {"clients": [entry]}))
    assert client.jwks == ec_key.jwks()
    assert client.jku == ()


# --- broken files ---------------------------------------------------------------------------


def _rsa_1024_jwk() -> dict[str, Any]:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    return {**RSAAlgorithm.to_jwk(small, as_dict=True), "kid": "small"}


def _error(path: Path) -> str:
    with pytest.raises(TrustConfigError) as caught:
        load_trust_config(path)
    message = str(caught.value)
    assert message.startswith(f"trust file {path}")
    return message


def _client_error(tmp_path: Path, entry: Any) -> str:
    return _error(_write(tmp_path, "trust.yaml", {"clients": [entry]}))


def test_missing_file(tmp_path: Path) -> None:
    assert "file not found" in _error(tmp_path / "absent.yaml")


def test_invalid_yaml_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("clients:\n  - iss: [unclosed\n")
    message = _error(path)
    assert "invalid YAML" in message and "line 3, column 1" in message


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"clients": [\n  {"iss": }\n]}')
    message = _error(path)
    assert "invalid JSON" in message and "line 2, column 11" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "expected a mapping with a 'clients' list"),
        ("- iss: x\n", "expected a mapping with a 'clients' list"),
        ("clients: []\n", ": clients: must be a non-empty list"),
        ("clients: []\nclient: []\n", ": client: unknown field"),
    ],
)
def test_bad_top_level(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    assert expected in _error(path)


JWK_EC = {
    "kty": "EC",
    "crv": "P-384",
    "kid": "k",
    "x": "dw_JGR8nB2I6XveNxUOl2qk699ZPLM2nYI5STSdiEl9avAkrm3CkfYMbrrjr8laB",
    "y": "Sm3mLE-n1zYNla_aiE3cb3nZsL51RbC7ysw3q8aJLxGm-hx79RPMYpITDjp7kgzy",
}


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("just-a-string", "clients[0]: must be a mapping"),
        ({"jku": ["https://e.org/k"]}, "clients[0].iss: is required"),
        ({"iss": "", "jku": ["https://e.org/k"]}, "clients[0].iss: must be a non-empty string"),
        ({"iss": " x", "jku": ["https://e.org/k"]}, "clients[0].iss: has leading or trailing"),
        ({"iss": "x"}, "clients[0]: needs exactly one key source"),
        (
            {"iss": "x", "jwks": {"keys": [JWK_EC]}, "jku": ["https://e.org/k"]},
            "clients[0]: has jwks and jku: give exactly one key source",
        ),
        ({"iss": "x", "jwks_url": "https://e.org/k"}, "clients[0].jwks_url: unknown field"),
        (
            {"iss": "x", "jku": ["https://e.org/k"], "algorithms": ["none"]},
            "clients[0].algorithms[0]: 'none' is never allowed",
        ),
        (
            {"iss": "x", "jku": ["https://e.org/k"], "algorithms": ["ES384", "HS256"]},
            "clients[0].algorithms[1]: 'HS256' is HMAC, never allowed",
        ),
        (
            {"iss": "x", "jku": ["https://e.org/k"], "algorithms": ["ES385"]},
            "clients[0].algorithms[0]: unsupported algorithm 'ES385'",
        ),
        (
            {"iss": "x", "jku": ["https://e.org/k"], "algorithms": []},
            "clients[0].algorithms: must be a non-empty list",
        ),
        (
            {"iss": "x", "jku": ["https://e.org/k", "http://e.org/k"]},
            "clients[0].jku[1]: 'http://e.org/k' must be an https URL",
        ),
        ({"iss": "x", "jku": []}, "clients[0].jku: must be a non-empty list"),
        (
            {"iss": "x", "jku": ["https://e.org/k"], "tenants": []},
            "clients[0].tenants: is empty: omit it to allow any tenant",
        ),
        ({"iss": "x", "jwks": [JWK_EC]}, "clients[0].jwks: a JWK Set must be a JSON object"),
        ({"iss": "x", "jwks": {"keys": []}}, "clients[0].jwks: the JWK Set has no keys"),
        (
            {"iss": "x", "jwks": {"keys": [JWK_EC, {"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}},
            "clients[0].jwks.keys[1]: symmetric ('oct') keys are never accepted",
        ),
        (
            {"iss": "x", "jwks": {"keys": [{**JWK_EC, "d": "secret"}]}},
            "clients[0].jwks.keys[0]: contains private key material",
        ),
        (
            {"iss": "x", "jwks": {"keys": [{k: v for k, v in JWK_EC.items() if k != "kid"}]}},
            "clients[0].jwks.keys[0]: 'kid' is required",
        ),
        (
            {"iss": "x", "jwks": {"keys": [{**JWK_EC, "x": "AAAA"}]}},
            "clients[0].jwks.keys[0]: not a valid EC public key",
        ),
        (
            {"iss": "x", "jwks": {"keys": [{**JWK_EC, "alg": "RS384"}]}},
            "clients[0].jwks.keys[0]: 'alg' 'RS384' does not fit",
        ),
        (
            {"iss": "x", "jwks": {"keys": [JWK_EC]}, "algorithms": ["RS384"]},
            "clients[0].jwks: no key can verify the client's algorithms (RS384)",
        ),
        (
            {"preset": "cerner"},
            "clients[0].preset: unknown preset 'cerner' (known: cds-hooks-sandbox",
        ),
    ],
)
def test_bad_client_entries(tmp_path: Path, entry: Any, expected: str) -> None:
    assert expected in _client_error(tmp_path, entry)


def test_small_rsa_keys_are_refused(tmp_path: Path) -> None:
    message = _client_error(tmp_path, {"iss": "x", "jwks": {"keys": [_rsa_1024_jwk()]}})
    assert "clients[0].jwks.keys[0]: RSA key has 1024 bits, fewer than 2048" in message


def test_duplicate_iss(tmp_path: Path) -> None:
    entry = {"iss": EHR_ISS, "jku": ["https://e.org/k"]}
    message = _error(
        _write(tmp_path, "t.yaml", {"clients": [entry, {"preset": "epic-example"}, entry]})
    )
    assert "clients[2].iss: duplicates the iss of clients[0]" in message


def test_missing_jwks_file_names_both_files(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.yaml", {"clients": [{"iss": "x", "jwks_file": "keys/none.json"}]})
    message = _error(path)
    assert str(tmp_path / "keys" / "none.json") in message
    assert "clients[0].jwks_file" in message and "file not found" in message


def test_broken_jwks_file(tmp_path: Path) -> None:
    (tmp_path / "k.json").write_text('{"keys": [}')
    message = _client_error(tmp_path, {"iss": "x", "jwks_file": "k.json"})
    assert "clients[0].jwks_file" in message and "invalid JSON at line 1, column 11" in message


def test_jwks_file_key_errors_name_the_key(tmp_path: Path) -> None:
    _write(tmp_path, "k.json", {"keys": [{**JWK_EC, "kty": "OKP"}]})
    message = _client_error(tmp_path, {"iss": "x", "jwks_file": "k.json"})
    assert "clients[0].jwks_file(k.json).keys[0]: unsupported key type 'OKP'" in message
