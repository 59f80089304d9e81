"""The trust file's ``fhir_servers``: which fhirServer values each client may send."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cds_service.trust import SANDBOX_ISS, TrustConfigError, TrustedClient, load_trust_config

from .support import AUDIENCE, EHR_ISS, Clock, SigningKey, bearer, make_verifier, mint


def _load(tmp_path: Path, *entries: dict[str, Any]) -> tuple[TrustedClient, ...]:
    path = tmp_path / "trust.yaml"
    path.write_text(yaml.safe_dump({"clients": list(entries)}, sort_keys=False))
    return load_trust_config(path).clients


def _error(tmp_path: Path, entry: dict[str, Any]) -> str:
    with pytest.raises(TrustConfigError) as caught:
        _load(tmp_path, entry)
    return str(caught.value)


JKU = ["https://ehr.example.org/jwks"]


def test_a_list_is_read_as_given(tmp_path: Path) -> None:
    servers = ["https://ehr.example.org/fhir/r4/", "https://ehr.example.org/fhir/stu3"]
    (client,) = _load(tmp_path, {"iss": EHR_ISS, "jku": JKU, "fhir_servers": servers})
    assert client.fhir_servers == tuple(servers)


def test_a_single_string_is_a_list_of_one(tmp_path: Path) -> None:
    entry = {"iss": EHR_ISS, "jku": JKU, "fhir_servers": "https://ehr.example.org/fhir"}
    (client,) = _load(tmp_path, entry)
    assert client.fhir_servers == ("https://ehr.example.org/fhir",)


def test_no_list_means_none_and_public_addresses_only(tmp_path: Path) -> None:
    (client,) = _load(tmp_path, {"iss": EHR_ISS, "jku": JKU})
    assert client.fhir_servers is None


@pytest.mark.parametrize(
    ("servers", "expected"),
    [
        ([], "clients[0].fhir_servers: is empty: omit it to allow any public FHIR server"),
        ("", "clients[0].fhir_servers[0]: must be a non-empty string"),
        ([42], "clients[0].fhir_servers[0]: must be a non-empty string"),
        (["http://ehr.example.org/fhir"], "fhir_servers[0]: 'http://ehr.example.org/fhir' must"),
        (["ftp://ehr.example.org/fhir"], "must be an https URL"),
        (["https://u:p@ehr.example.org/fhir"], "must not carry credentials"),
        (["https://ehr.example.org/fhir?_format=json"], "must not have a query"),
        (["https://ehr.example.org/fhir#x"], "must not have a fragment"),
        (["https://ehr.example.org/fhir/../admin"], "must not have dot segments"),
    ],
)
def test_bad_lists_name_the_entry(tmp_path: Path, servers: Any, expected: str) -> None:
    entry = {"iss": EHR_ISS, "jku": JKU, "fhir_servers": servers}
    assert expected in _error(tmp_path, entry)


def test_plain_http_is_allowed_on_this_machine_only(tmp_path: Path) -> None:
    entry = {"iss": EHR_ISS, "jku": JKU, "fhir_servers": ["http://127.0.0.1:8090/fhir"]}
    (client,) = _load(tmp_path, entry)
    assert client.fhir_servers == ("http://127.0.0.1:8090/fhir",)


@pytest.mark.parametrize("preset", ["epic-example", "oracle-health-example"])
def test_epic_and_oracle_presets_default_to_their_iss(tmp_path: Path, preset: str) -> None:
    site_iss = "https://fhir.hospital.example.org/r4/tenant-1"
    entry = {"preset": preset, "iss": site_iss, "jku": ["https://auth.hospital.example.org/jwks"]}
    (client,) = _load(tmp_path, entry)
    assert client.fhir_servers == (site_iss,)


def test_a_preset_list_can_be_replaced(tmp_path: Path) -> None:
    entry = {
        "preset": "epic-example",
        "iss": "https://fhir.hospital.example.org/interconnect/api/FHIR/R4",
        "jku": ["https://fhir.hospital.example.org/jwks"],
        "fhir_servers": ["https://fhir-b.hospital.example.org/api/FHIR/R4"],
    }
    (client,) = _load(tmp_path, entry)
    assert client.fhir_servers == ("https://fhir-b.hospital.example.org/api/FHIR/R4",)


def test_the_sandbox_preset_has_no_list(tmp_path: Path) -> None:
    (client,) = _load(tmp_path, {"preset": "cds-hooks-sandbox"})
    assert client.iss == SANDBOX_ISS
    assert client.fhir_servers is None


def test_the_verified_caller_carries_its_clients_list(clock: Clock, ec_key: SigningKey) -> None:
    servers = ("https://ehr.example.org/fhir",)
    client = TrustedClient(iss=EHR_ISS, jwks=ec_key.jwks(), fhir_servers=servers)
    caller = make_verifier(clock, client).verify(bearer(mint(ec_key)), AUDIENCE)
    assert caller.fhir_servers == servers
    unlisted = TrustedClient(iss=EHR_ISS, jwks=ec_key.jwks())
    caller = make_verifier(clock, unlisted).verify(bearer(mint(ec_key)), AUDIENCE)
    assert caller.fhir_servers is None
