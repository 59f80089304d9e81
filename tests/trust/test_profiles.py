"""Client profiles in the trust file: each field, the presets' profiles, ``default_profile``, and
precise errors naming the file and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from cds_service.trust import (
    PRESETS,
    ClientProfile,
    TrustConfigError,
    load_trust_config,
)

from .support import EHR_ISS, SigningKey

OTHER_ISS = "https://other-ehr.example.org/fhir"


def _trust_file(directory: Path, document: dict[str, Any]) -> Path:
    path = directory / "trust.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _client(key: SigningKey, profile: Any = None, **fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"iss": EHR_ISS, "jwks": key.jwks(), **fields}
    if profile is not None:
        entry["profile"] = profile
    return entry


def _profile_of(directory: Path, key: SigningKey, profile: Any) -> ClientProfile | None:
    config = load_trust_config(_trust_file(directory, {"clients": [_client(key, profile)]}))
    return config.clients[0].profile


def _error(directory: Path, document: dict[str, Any]) -> TrustConfigError:
    path = _trust_file(directory, document)
    with pytest.raises(TrustConfigError) as caught:
        load_trust_config(path)
    return caught.value


def _profile_error(directory: Path, key: SigningKey, profile: Any) -> TrustConfigError:
    return _error(directory, {"clients": [_client(key, profile)]})


# --- every field, valid -------------------------------------------------------------------


def test_a_client_without_a_profile_has_none(tmp_path: Path, ec_key: SigningKey) -> None:
    config = load_trust_config(_trust_file(tmp_path, {"clients": [_client(ec_key)]}))
    assert config.clients[0].profile is None
    assert config.default_profile is None
    assert config.client_profiles() == {}


def test_an_empty_profile_has_every_default(tmp_path: Path, ec_key: SigningKey) -> None:
    profile = _profile_of(tmp_path, ec_key, {})
    assert profile == ClientProfile()
    assert profile is not None and profile.describe() == "default"
    assert (profile.page_size, profile.sort, profile.skip_resources) == (None, True, frozenset())
    assert (profile.cds_hooks_version, profile.content) == ("2.0", None)


def test_every_field(tmp_path: Path, ec_key: SigningKey) -> None:
    (tmp_path / "sites" / "ehr-a").mkdir(parents=True)
    profile = _profile_of(
        tmp_path,
        ec_key,
        {
            "page_size": 200,
            "sort": False,
            "skip_resources": ["MedicationStatement", "Condition"],
            "cds_hooks_version": "1.0",
            "content": "sites/ehr-a/",
        },
    )
    assert profile == ClientProfile(
        page_size=200,
        sort=False,
        skip_resources=frozenset({"MedicationStatement", "Condition"}),
        cds_hooks_version="1.0",
        content=(tmp_path / "sites" / "ehr-a").resolve(),
        content_label="sites/ehr-a",
    )
    assert profile.where == "clients[0].profile"
    assert profile.describe() == (
        "content=sites/ehr-a page_size=200 sort=false skip=Condition,MedicationStatement "
        "cds_hooks=1.0"
    )


@pytest.mark.parametrize("page_size", [1, 50, 1000])
def test_page_size_from_1_to_1000(tmp_path: Path, ec_key: SigningKey, page_size: int) -> None:
    profile = _profile_of(tmp_path, ec_key, {"page_size": page_size})
    assert profile is not None and profile.page_size == page_size


def test_sort_true_is_the_default_and_can_be_said(tmp_path: Path, ec_key: SigningKey) -> None:
    profile = _profile_of(tmp_path, ec_key, {"sort": True})
    assert profile is not None and profile.sort is True


@pytest.mark.parametrize("skipped", ["MedicationStatement", "Condition", "Medication"])
def test_each_skippable_resource_type(tmp_path: Path, ec_key: SigningKey, skipped: str) -> None:
    profile = _profile_of(tmp_path, ec_key, {"skip_resources": [skipped]})
    assert profile is not None and profile.skip_resources == frozenset({skipped})


def test_a_single_skipped_type_may_be_a_string(tmp_path: Path, ec_key: SigningKey) -> None:
    profile = _profile_of(tmp_path, ec_key, {"skip_resources": "Condition"})
    assert profile is not None and profile.skip_resources == frozenset({"Condition"})


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_cds_hooks_versions(tmp_path: Path, ec_key: SigningKey, version: str) -> None:
    profile = _profile_of(tmp_path, ec_key, {"cds_hooks_version": version})
    assert profile is not None and profile.cds_hooks_version == version


def test_content_is_relative_to_the_trust_file_or_absolute(
    tmp_path: Path, ec_key: SigningKey
) -> None:
    trust_dir = tmp_path / "etc"
    (trust_dir / "sites" / "a").mkdir(parents=True)
    elsewhere = tmp_path / "shared-content"
    elsewhere.mkdir()
    document = {
        "clients": [
            _client(ec_key, {"content": "./sites/a"}),
            _client(ec_key, {"content": str(elsewhere)}, iss=OTHER_ISS),
        ]
    }
    trust_dir.mkdir(exist_ok=True)
    relative, absolute = (
        client.profile for client in load_trust_config(_trust_file(trust_dir, document)).clients
    )
    assert relative is not None and absolute is not None
    assert (relative.content, relative.content_label) == (
        (trust_dir / "sites/a").resolve(),
        "sites/a",
    )
    assert (absolute.content, absolute.content_label) == (
        elsewhere.resolve(),
        elsewhere.resolve().as_posix(),
    )


def test_a_json_trust_file_takes_profiles_too(tmp_path: Path, ec_key: SigningKey) -> None:
    path = tmp_path / "trust.json"
    entry = _client(ec_key, {"page_size": 100, "cds_hooks_version": "1.0"})
    path.write_text(json.dumps({"clients": [entry], "default_profile": {"sort": False}}))
    config = load_trust_config(path)
    assert config.client_profiles() == {
        EHR_ISS: ClientProfile(page_size=100, cds_hooks_version="1.0")
    }
    assert config.default_profile == ClientProfile(sort=False)


# --- every field, refused -----------------------------------------------------------------


# (profile block, location, words of the reason)
BAD_PROFILES = [
    ({"page_size": 0}, "page_size", "0 is not from 1 to 1000"),
    ({"page_size": 1001}, "page_size", "1001 is not from 1 to 1000"),
    ({"page_size": "200"}, "page_size", "must be a whole number from 1 to 1000"),
    ({"page_size": 20.5}, "page_size", "must be a whole number from 1 to 1000"),
    ({"page_size": True}, "page_size", "must be a whole number from 1 to 1000"),
    ({"sort": "no"}, "sort", "must be true or false"),
    ({"sort": None}, "sort", "must be true or false"),
    (
        {"skip_resources": ["Patient"]},
        "skip_resources[0]",
        "Patient cannot be skipped: the rules cannot do without it "
        "(skippable: Condition, Medication, MedicationStatement)",
    ),
    (
        {"skip_resources": ["Condition", "Observation"]},
        "skip_resources[1]",
        "Observation cannot be skipped: the rules cannot do without it",
    ),
    (
        {"skip_resources": ["MedicationRequest"]},
        "skip_resources[0]",
        "MedicationRequest cannot be skipped",
    ),
    (
        {"skip_resources": ["AllergyIntolerance"]},
        "skip_resources[0]",
        "'AllergyIntolerance' is not a resource type the service can skip "
        "(skippable: Condition, Medication, MedicationStatement)",
    ),
    ({"skip_resources": [""]}, "skip_resources[0]", "must be a resource type"),
    ({"skip_resources": {"Condition": 1}}, "skip_resources", "must be a list of resource types"),
    (
        {"cds_hooks_version": 1.0},
        "cds_hooks_version",
        'must be "1.0" or "2.0", not 1.0 (quote it: YAML reads 1.0 as a number)',
    ),
    ({"cds_hooks_version": "1.1"}, "cds_hooks_version", 'must be "1.0" or "2.0", not \'1.1\''),
    ({"cds_hooks_version": 2}, "cds_hooks_version", 'must be "1.0" or "2.0", not 2'),
    ({"content": ""}, "content", "must be the path of a folder (relative to the trust file)"),
    ({"content": ["sites/a"]}, "content", "must be the path of a folder"),
    (
        {"pagesize": 200},
        "pagesize",
        "unknown field (allowed: page_size, sort, skip_resources, cds_hooks_version, content)",
    ),
]


@pytest.mark.parametrize(
    ("profile", "location", "reason"),
    BAD_PROFILES,
    ids=[b[1] + "-" + repr(b[0]) for b in BAD_PROFILES],
)
def test_a_bad_field_names_the_file_the_client_and_the_field(
    tmp_path: Path, ec_key: SigningKey, profile: dict[str, Any], location: str, reason: str
) -> None:
    error = _profile_error(tmp_path, ec_key, profile)
    assert error.file == tmp_path / "trust.yaml"
    assert error.location == f"clients[0].profile.{location}"
    assert reason in error.reason
    assert str(error).startswith(f"trust file {tmp_path / 'trust.yaml'}: clients[0].profile.")


def test_a_profile_that_is_not_a_mapping(tmp_path: Path, ec_key: SigningKey) -> None:
    error = _profile_error(tmp_path, ec_key, ["page_size", 200])
    assert error.location == "clients[0].profile"
    assert error.reason == (
        "must be a mapping of page_size, sort, skip_resources, cds_hooks_version, content"
    )


def test_a_content_folder_that_does_not_exist(tmp_path: Path, ec_key: SigningKey) -> None:
    error = _profile_error(tmp_path, ec_key, {"content": "sites/missing"})
    assert error.location == "clients[0].profile.content"
    assert error.reason == f"{tmp_path / 'sites' / 'missing'} does not exist"


def test_a_content_path_that_is_a_file(tmp_path: Path, ec_key: SigningKey) -> None:
    (tmp_path / "overlay.yaml").write_text("max_cards: 2\n")
    error = _profile_error(tmp_path, ec_key, {"content": "overlay.yaml"})
    assert error.reason == f"{tmp_path / 'overlay.yaml'} is not a folder"


def test_the_second_clients_profile_is_named(tmp_path: Path, ec_key: SigningKey) -> None:
    document = {
        "clients": [_client(ec_key), _client(ec_key, {"sort": 0}, iss=OTHER_ISS)],
    }
    assert _error(tmp_path, document).location == "clients[1].profile.sort"


# --- presets ------------------------------------------------------------------------------


def test_oracle_health_preset_profile(tmp_path: Path) -> None:
    config = load_trust_config(
        _trust_file(tmp_path, {"clients": [{"preset": "oracle-health-example"}]})
    )
    assert config.clients[0].profile == ClientProfile(
        page_size=200,
        sort=False,
        skip_resources=frozenset({"MedicationStatement"}),
        cds_hooks_version="1.0",
    )


def test_epic_preset_profile_is_the_services_defaults(tmp_path: Path) -> None:
    config = load_trust_config(_trust_file(tmp_path, {"clients": [{"preset": "epic-example"}]}))
    profile = config.clients[0].profile
    assert profile == ClientProfile(page_size=None, sort=True, cds_hooks_version="2.0")
    assert profile is not None and profile.describe() == "default"


def test_the_sandbox_preset_has_no_profile(tmp_path: Path) -> None:
    config = load_trust_config(
        _trust_file(tmp_path, {"clients": [{"preset": "cds-hooks-sandbox"}]})
    )
    assert config.clients[0].profile is None
    assert PRESETS["cds-hooks-sandbox"].profile is None


def test_a_profile_block_overrides_the_presets_field_by_field(tmp_path: Path) -> None:
    (tmp_path / "sites" / "north").mkdir(parents=True)
    entry = {
        "preset": "oracle-health-example",
        "profile": {"page_size": 100, "content": "sites/north"},
    }
    config = load_trust_config(_trust_file(tmp_path, {"clients": [entry]}))
    assert config.clients[0].profile == ClientProfile(
        page_size=100,
        sort=False,
        skip_resources=frozenset({"MedicationStatement"}),
        cds_hooks_version="1.0",
        content=(tmp_path / "sites" / "north").resolve(),
        content_label="sites/north",
    )


def test_a_bad_override_of_a_preset_is_named(tmp_path: Path) -> None:
    entry = {"preset": "oracle-health-example", "profile": {"skip_resources": ["Observation"]}}
    error = _error(tmp_path, {"clients": [entry]})
    assert error.location == "clients[0].profile.skip_resources[0]"


def test_every_preset_profile_is_valid(tmp_path: Path) -> None:
    for name, preset in PRESETS.items():
        if preset.profile is not None:
            entry = {"preset": name, "iss": f"https://{name}.example.org/fhir"}
            assert load_trust_config(_trust_file(tmp_path, {"clients": [entry]})).clients


# --- default_profile ----------------------------------------------------------------------


def test_default_profile(tmp_path: Path, ec_key: SigningKey) -> None:
    (tmp_path / "sites" / "common").mkdir(parents=True)
    document = {
        "default_profile": {"content": "sites/common", "page_size": 50},
        "clients": [_client(ec_key)],
    }
    config = load_trust_config(_trust_file(tmp_path, document))
    assert config.default_profile == ClientProfile(
        page_size=50, content=(tmp_path / "sites/common").resolve(), content_label="sites/common"
    )
    assert config.default_profile.where == "default_profile"
    assert config.clients[0].profile is None  # the default applies to it when served


def test_a_bad_default_profile_is_named(tmp_path: Path, ec_key: SigningKey) -> None:
    document = {"default_profile": {"page_size": 5000}, "clients": [_client(ec_key)]}
    error = _error(tmp_path, document)
    assert error.location == "default_profile.page_size"


def test_an_unknown_top_level_field_lists_both(tmp_path: Path, ec_key: SigningKey) -> None:
    error = _error(tmp_path, {"clients": [_client(ec_key)], "profiles": {}})
    assert error.location == "profiles"
    assert error.reason == "unknown field (expected 'clients', 'default_profile')"


def test_clients_are_required_unless_only_the_default_profile_is_wanted(tmp_path: Path) -> None:
    path = _trust_file(tmp_path, {"default_profile": {"cds_hooks_version": "1.0"}})
    with pytest.raises(TrustConfigError, match="clients: must be a non-empty list"):
        load_trust_config(path)
    config = load_trust_config(path, require_clients=False)
    assert config.clients == ()
    assert config.default_profile == ClientProfile(cds_hooks_version="1.0")


def test_without_clients_listed_ones_are_still_checked(tmp_path: Path) -> None:
    path = _trust_file(tmp_path, {"clients": [{"iss": EHR_ISS}]})
    with pytest.raises(TrustConfigError, match="needs exactly one key source"):
        load_trust_config(path, require_clients=False)
