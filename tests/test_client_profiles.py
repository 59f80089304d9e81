"""Client profiles end to end: each client (by ``iss``) served with its own profile from the trust
file (FHIR options, CDS Hooks version, an overlay on ``cards/``), the default profile for every
other caller and with authentication off, start-up and ``check-config`` failing loudly on a bad
overlay, and two clients with different overlays served at the same time, in-process and by a
real server."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import structlog

from cds_service import pipeline
from cds_service.bootstrap import Runtime, build_runtime
from cds_service.content import Content
from cds_service.errors import ConfigurationError
from cds_service.gathering import FhirServerOptions
from cds_service.pipeline import CdsService
from cds_service.profile import build_profile_set
from cds_service.scenarios import SCENARIOS_DIR, Scenario, load_scenario
from cds_service.settings import Settings
from cds_service.trust import ClientProfile, VerifiedCaller

from .process_support import clean_environment, free_port, run_cli
from .settings_support import make_settings
from .support import REPO, shipped_content
from .trust.support import SigningKey, claims, mint, new_ec_key

BMT = SCENARIOS_DIR / "bmt-cyclosporine-refractory-hypokalemia.json"
HOOK = "mg-patient-view"
ISS_A = "https://ehr-a.example.org/fhir"
ISS_B = "https://ehr-b.example.org/fhir"
ISS_C = "https://ehr-c.example.org/fhir"  # no profile: the default one
ISS_ORACLE = "https://oracle.example.org/r4/tenant-1"
SHIPPED_VERSION = "2.0.0"


# --- a site: two overlays and a trust file naming them ------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_overlays(directory: Path) -> None:
    """EHR A's site reports magnesium in mmol/L (its serum Mg orderable is the molar LOINC code)
    and has not approved the refractory-hypokalemia card; EHR B orders magnesium oxide by its own
    formulary code."""
    write(directory / "sites/ehr-a/settings.yaml", 'content_version: "2.0.0+ehr-a"\n')
    write(
        directory / "sites/ehr-a/formulary.yaml",
        "lab_orders:\n"
        "  magnesium:\n"
        '    code: "2601-3"\n'
        "    display: Magnesium [Moles/volume] in Serum or Plasma\n",
    )
    write(directory / "sites/ehr-a/topics/mg-refractory-hypokalemia.yaml", "enabled: false\n")
    write(directory / "sites/ehr-b/settings.yaml", 'content_version: "2.0.0+ehr-b"\n')
    write(
        directory / "sites/ehr-b/formulary.yaml",
        "medications:\n"
        "  oral_magnesium:\n"
        "    system: https://formulary.ehr-b.example.org\n"
        "    code: MGOX400\n",
    )


@dataclass(frozen=True)
class Site:
    trust_file: Path
    keys: dict[str, SigningKey]


def write_site(directory: Path, *, extra: str = "") -> Site:
    write_overlays(directory)
    keys = {iss: new_ec_key(f"kid-{n}") for n, iss in enumerate((ISS_A, ISS_B, ISS_C, ISS_ORACLE))}
    for n, key in enumerate(keys.values()):
        write(directory / f"keys/{n}.jwks.json", json.dumps(key.jwks()))
    trust = write(
        directory / "trust.yaml",
        f"""\
clients:
  - iss: {ISS_A}
    jwks_file: keys/0.jwks.json
    profile:
      content: sites/ehr-a
  - iss: {ISS_B}
    jwks_file: keys/1.jwks.json
    profile:
      content: sites/ehr-b/
      page_size: 100
  - iss: {ISS_C}
    jwks_file: keys/2.jwks.json
  - preset: oracle-health-example
    iss: {ISS_ORACLE}
    jwks_file: keys/3.jwks.json
    algorithms: [ES384]
    profile:
      content: sites/ehr-a
{extra}""",
    )
    return Site(trust, keys)


def jwt_settings(tmp_path: Path, trust_file: Path, *, auth_mode: str = "jwt") -> Settings:
    return make_settings(
        auth_mode=auth_mode,
        trust_file=trust_file,
        database_url=f"sqlite:///{tmp_path / 'db' / 'cds.sqlite3'}",
    )


@pytest.fixture
def runtime_for(tmp_path: Path) -> Iterator[Callable[[Settings], Runtime]]:
    opened: list[Runtime] = []

    def build(settings: Settings) -> Runtime:
        runtime = build_runtime(settings)
        opened.append(runtime)
        return runtime

    yield build
    for runtime in opened:
        runtime.store.close()


def caller(iss: str) -> VerifiedCaller:
    return VerifiedCaller(iss=iss, sub=None, jti="jti-1", tenant=None, kid="k", alg="ES384")


def scenario() -> Scenario:
    return load_scenario(BMT, shift=False)


def at_scenario_time(service: CdsService) -> CdsService:
    service.clock = lambda: scenario().now
    return service


# --- what each client gets ----------------------------------------------------------------


def codes(card: dict[str, Any]) -> list[str]:
    return sorted(
        coding["code"]
        for suggestion in card.get("suggestions", ())
        for action in suggestion["actions"]
        for key in ("code", "medicationCodeableConcept")
        if key in action["resource"]
        for coding in action["resource"][key]["coding"]
    )


def signature(body: dict[str, Any]) -> list[tuple[str, str, str, tuple[str, ...], bool]]:
    """Per card: its topic (from its topic page), indicator, content version, the codes its
    suggestions order, and whether it is in the 2.0 shape (a card uuid)."""
    return [
        (
            card["source"]["url"].rsplit("/", 1)[-1],
            card["indicator"],
            card["extension"]["cds-service.content"]["version"],
            tuple(dict.fromkeys(codes(card))),
            "uuid" in card,
        )
        for card in body["cards"]
    ]


HYPOKALEMIA = ("mg-refractory-hypokalemia", "warning")
EXPECTED = {
    ISS_A: [("hypomagnesemia", "warning", "2.0.0+ehr-a", ("198741", "2601-3"), True)],
    ISS_B: [
        ("hypomagnesemia", "warning", "2.0.0+ehr-b", ("19123-9", "MGOX400"), True),
        (*HYPOKALEMIA, "2.0.0+ehr-b", (), True),
    ],
    ISS_C: [
        ("hypomagnesemia", "warning", SHIPPED_VERSION, ("19123-9", "198741"), True),
        (*HYPOKALEMIA, SHIPPED_VERSION, (), True),
    ],
    # the Oracle Health preset: CDS Hooks 1.0, with EHR A's overlay
    ISS_ORACLE: [("hypomagnesemia", "warning", "2.0.0+ehr-a", ("198741", "2601-3"), False)],
}


def test_each_client_is_served_with_its_own_profile(
    tmp_path: Path, runtime_for: Callable[[Settings], Runtime]
) -> None:
    site = write_site(tmp_path)
    service = at_scenario_time(runtime_for(jwt_settings(tmp_path, site.trust_file)).service)
    seen = {
        iss: signature(service.hook(HOOK, scenario().request, caller=caller(iss)).response)
        for iss in EXPECTED
    }
    assert seen == EXPECTED
    # An unknown iss cannot call (the verifier refuses it); the pipeline would use the default.
    assert service.profile_for(caller("https://unknown.example.org")) is service.profile


def test_the_overlay_changes_one_client_only(
    tmp_path: Path, runtime_for: Callable[[Settings], Runtime]
) -> None:
    """A formulary code and a disabled topic, for EHR A only; everyone else as shipped."""
    site = write_site(tmp_path)
    service = runtime_for(jwt_settings(tmp_path, site.trust_file)).service
    a = service.profile_for(caller(ISS_A)).content
    c = service.profile_for(caller(ISS_C)).content
    assert a.formulary.lab_orders["magnesium"].code == "2601-3"
    assert c.formulary.lab_orders["magnesium"].code == "19123-9"
    assert not a.topics["mg-refractory-hypokalemia"].topic.enabled
    assert c.topics["mg-refractory-hypokalemia"].topic.enabled
    assert c is service.content
    assert a.governance.version.version == "2.0.0+ehr-a"
    assert a.governance.version.fingerprint != c.governance.version.fingerprint


def test_profiles_and_contents_are_shared(
    tmp_path: Path, runtime_for: Callable[[Settings], Runtime]
) -> None:
    site = write_site(tmp_path)
    service = runtime_for(jwt_settings(tmp_path, site.trust_file)).service
    a, _, c, oracle = (service.profile_for(caller(iss)) for iss in EXPECTED)
    assert c is service.profile and c.name == "default"
    assert oracle is not a  # another version, other FHIR options
    assert oracle.content is a.content  # the same overlay, compiled once
    assert len({id(p) for p in service.profiles.profiles}) == 4
    assert [p.name for p in service.profiles.profiles] == [
        "default",
        "content=sites/ehr-a",
        "content=sites/ehr-b page_size=100",
        "content=sites/ehr-a page_size=200 sort=false skip=MedicationStatement cds_hooks=1.0",
    ]


def test_the_same_settings_give_one_profile_and_each_overlay_loads_once() -> None:
    content = shipped_content()
    overlay = REPO / "cards"  # any folder: the loader below does not read it
    loads: list[Path] = []

    def load(profile: ClientProfile) -> Content:
        assert profile.content is not None
        loads.append(profile.content)
        return content

    same = ClientProfile(content=overlay, content_label="x", sort=False, where="clients[0].profile")
    profiles = build_profile_set(
        content,
        clients={
            ISS_A: same,
            ISS_B: ClientProfile(
                content=overlay, content_label="x", sort=False, where="clients[1].profile"
            ),
            ISS_C: ClientProfile(content=overlay, content_label="x", cds_hooks_version="1.0"),
            ISS_ORACLE: ClientProfile(),  # the same as no profile
        },
        load_overlay=load,
    )
    assert loads == [overlay]
    assert profiles.by_iss[ISS_A] is profiles.by_iss[ISS_B]
    assert profiles.by_iss[ISS_C] is not profiles.by_iss[ISS_A]
    assert profiles.by_iss[ISS_ORACLE] is profiles.default
    assert profiles.for_iss(None) is profiles.for_iss("https://x.example.org") is profiles.default


# --- each field reaches what it drives ------------------------------------------------------


def test_fhir_options_reach_the_fallback_searches(
    tmp_path: Path, runtime_for: Callable[[Settings], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = write_site(tmp_path)
    service = at_scenario_time(runtime_for(jwt_settings(tmp_path, site.trust_file)).service)
    passed: dict[str, FhirServerOptions] = {}
    real_gather = pipeline.gather

    def recording(*args: Any, **kwargs: Any) -> Any:
        passed[current] = kwargs["server"]
        return real_gather(*args, **kwargs)

    monkeypatch.setattr(pipeline, "gather", recording)
    for current in (ISS_A, ISS_B, ISS_C, ISS_ORACLE):
        service.hook(HOOK, scenario().request, caller=caller(current))
    assert passed == {
        ISS_A: FhirServerOptions(),
        ISS_B: FhirServerOptions(page_size=100),
        ISS_C: FhirServerOptions(),
        ISS_ORACLE: FhirServerOptions(
            page_size=200, sort=False, skip_resources=frozenset({"MedicationStatement"})
        ),
    }


def test_the_log_names_the_profile_that_served_the_call(
    tmp_path: Path, runtime_for: Callable[[Settings], Runtime]
) -> None:
    site = write_site(tmp_path)
    service = at_scenario_time(runtime_for(jwt_settings(tmp_path, site.trust_file)).service)
    with structlog.testing.capture_logs() as logs:
        service.hook(HOOK, scenario().request, caller=caller(ISS_B))
        service.hook(HOOK, scenario().request, caller=caller(ISS_C))
    evaluated = [line for line in logs if line["event"] == "hook.evaluated"]
    assert [line["profile"] for line in evaluated] == [
        "content=sites/ehr-b page_size=100",
        "default",
    ]


def test_discovery_and_the_readiness_content_stay_the_default_profiles(
    tmp_path: Path, runtime_for: Callable[[Settings], Runtime]
) -> None:
    site = write_site(tmp_path)
    service = runtime_for(jwt_settings(tmp_path, site.trust_file)).service
    versions = {
        s["extension"]["cds-service.content"]["version"] for s in service.discovery["services"]
    }
    assert versions == {SHIPPED_VERSION}


# --- the default profile: clients without one, and authentication off ----------------------


def test_the_default_profile_serves_clients_without_one(
    tmp_path: Path, runtime_for: Callable[[Settings], Runtime]
) -> None:
    site = write_site(tmp_path, extra="default_profile:\n  content: sites/ehr-b\n")
    service = at_scenario_time(runtime_for(jwt_settings(tmp_path, site.trust_file)).service)
    body = service.hook(HOOK, scenario().request, caller=caller(ISS_C)).response
    assert signature(body) == EXPECTED[ISS_B]  # ehr-b's overlay, as the default
    a = service.hook(HOOK, scenario().request, caller=caller(ISS_A)).response
    assert signature(a) == EXPECTED[ISS_A]  # a client's own profile is not merged with it


def test_with_auth_off_the_trust_files_default_profile_serves_every_call(
    tmp_path: Path, runtime_for: Callable[[Settings], Runtime]
) -> None:
    write_overlays(tmp_path)
    trust = write(
        tmp_path / "trust.yaml",
        'default_profile:\n  content: sites/ehr-a\n  cds_hooks_version: "1.0"\n',
    )
    runtime = runtime_for(jwt_settings(tmp_path, trust, auth_mode="off"))
    assert runtime.authenticator is None
    service = at_scenario_time(runtime.service)
    assert service.profile.name == "content=sites/ehr-a cds_hooks=1.0"
    body = service.hook(HOOK, scenario().request).response
    assert signature(body) == EXPECTED[ISS_ORACLE]
    assert body["cards"][0]["selectionBehavior"] == "at-most-one"


def test_with_auth_off_a_trust_files_clients_are_not_served_by_iss(
    tmp_path: Path, runtime_for: Callable[[Settings], Runtime]
) -> None:
    site = write_site(tmp_path)
    runtime = runtime_for(jwt_settings(tmp_path, site.trust_file, auth_mode="off"))
    assert runtime.authenticator is None
    assert runtime.service.profiles.by_iss == {}


def test_without_a_trust_file_there_is_one_default_profile(
    tmp_path: Path, runtime_for: Callable[[Settings], Runtime]
) -> None:
    runtime = runtime_for(make_settings(database_url=f"sqlite:///{tmp_path / 'cds.sqlite3'}"))
    assert runtime.service.profiles.profiles == (runtime.service.profile,)
    assert runtime.service.profile.name == "default"


# --- a bad overlay: start-up and check-config fail loudly -----------------------------------


def break_overlay(directory: Path) -> Path:
    return write(
        directory / "sites/ehr-b/topics/mg-declining.yaml",
        'summary:\n  info: "Mg falling: {{ patient_name }}"\n',
    )


def test_start_up_fails_on_a_bad_overlay_naming_the_trust_file_the_client_and_the_file(
    tmp_path: Path,
) -> None:
    site = write_site(tmp_path)
    broken = break_overlay(tmp_path)
    with pytest.raises(ConfigurationError) as caught:
        build_runtime(jwt_settings(tmp_path, site.trust_file))
    message = str(caught.value)
    assert message.startswith(
        f"trust file {site.trust_file}: clients[1].profile.content (sites/ehr-b): {broken}: "
        "summary.info: unknown variable patient_name"
    )
    assert "The service does not start" in message


def test_start_up_fails_on_a_bad_overlay_through_the_command_line(tmp_path: Path) -> None:
    site = write_site(tmp_path)
    break_overlay(tmp_path)
    env = {
        "CDS_TRUST_FILE": str(site.trust_file),
        "CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'cds.sqlite3'}",
        "CDS_PUBLIC_BASE_URL": "http://127.0.0.1:9",
    }
    result = run_cli("serve", "--port", str(free_port()), env=env)
    assert result.returncode == 2
    assert f"trust file {site.trust_file}: clients[1].profile.content (sites/ehr-b)" in (
        result.stderr
    )
    assert "unknown variable patient_name" in result.stderr


def test_check_config_checks_every_overlay_the_trust_file_names(tmp_path: Path) -> None:
    site = write_site(tmp_path, extra="default_profile:\n  content: sites/ehr-b\n")
    result = run_cli("check-config", "--trust-file", str(site.trust_file))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"{site.trust_file}: 2 overlay folders" in lines
    overlay_lines = [line for line in lines if line.startswith("overlay ")]
    assert [line.split(": OK")[0] for line in overlay_lines] == [
        "overlay sites/ehr-b (for default_profile, clients[1] (https://ehr-b.example.org/fhir))",
        "overlay sites/ehr-a (for clients[0] (https://ehr-a.example.org/fhir), "
        "clients[3] (https://oracle.example.org/r4/tenant-1))",
    ]
    assert "content version 2.0.0+ehr-b" in overlay_lines[0]


def test_check_config_names_a_bad_overlay_from_cds_trust_file(tmp_path: Path) -> None:
    site = write_site(tmp_path)
    broken = break_overlay(tmp_path)
    result = run_cli("check-config", env={"CDS_TRUST_FILE": str(site.trust_file)})
    assert result.returncode == 1
    assert (
        f"overlay sites/ehr-b (for clients[1] (https://ehr-b.example.org/fhir)) is invalid: "
        f"{broken}: summary.info: unknown variable patient_name"
    ) in result.stderr
    assert "overlay sites/ehr-a (for clients[0]" in result.stdout  # the good one still checked


# --- two clients, different overlays, at the same time --------------------------------------


def test_two_clients_with_different_overlays_served_by_concurrent_threads(
    tmp_path: Path, runtime_for: Callable[[Settings], Runtime]
) -> None:
    site = write_site(tmp_path)
    service = at_scenario_time(runtime_for(jwt_settings(tmp_path, site.trust_file)).service)
    request = scenario().request
    calls = [ISS_A, ISS_B] * 40
    # Each round of 8 calls (4 per client) starts at once.
    each_round = threading.Barrier(8)

    def call(iss: str) -> tuple[str, Any]:
        each_round.wait(timeout=30)
        return iss, signature(service.hook(HOOK, request, caller=caller(iss)).response)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, calls))
    assert {iss for iss, _ in results} == {ISS_A, ISS_B}
    for iss, seen in results:
        assert seen == EXPECTED[iss], iss


@pytest.mark.slow
def test_a_real_server_serves_each_client_its_own_cards_concurrently(tmp_path: Path) -> None:
    """``cds-service serve`` with the trust file: real tokens, real HTTP, real threads."""
    site = write_site(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_environment(
        CDS_TRUST_FILE=str(site.trust_file),
        CDS_DATABASE_URL=f"sqlite:///{tmp_path / 'cds.sqlite3'}",
        CDS_PUBLIC_BASE_URL=base,
        CDS_LOG_LEVEL="WARNING",
    )
    command = [sys.executable, "-m", "cds_service.cli", "serve", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--workers", "2"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_healthy(base, process)
        request = load_scenario(BMT).request  # dated today: the server runs on the real clock

        def call(iss: str) -> tuple[str, Any]:
            url = f"{base}/cds-services/{HOOK}"
            token = mint(site.keys[iss], claims(at=time.time(), iss=iss, aud=url))
            response = requests.post(
                url, json=request, headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
            assert response.status_code == 200, response.text
            return iss, signature(response.json())

        calls = [ISS_A, ISS_B, ISS_ORACLE, ISS_C] * 12
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(call, calls))
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert len(results) == len(calls), stderr
    for iss, seen in results:
        assert seen == EXPECTED[iss], iss


def wait_until_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if process.poll() is not None:
            raise AssertionError(process.stderr.read().decode() if process.stderr else "exited")
        assert time.monotonic() < deadline, "service did not start"
        time.sleep(0.2)
