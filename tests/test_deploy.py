"""The deployment examples in ``deploy/``: they parse, name only settings that exist, wire the
probes, Secrets and selectors together, and their trust files load."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cds_service.cli import build_parser
from cds_service.errors import env_name
from cds_service.settings import Settings
from cds_service.trust import load_trust_config

from .support import REPO

DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
KUBERNETES = DEPLOY / "kubernetes"
SETTINGS = {env_name(field) for field in Settings.model_fields}


def yaml_files() -> list[Path]:
    return sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])


def documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def kubernetes_objects() -> dict[str, list[dict[str, Any]]]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for doc in documents(path):
            if "kind" in doc and doc.get("apiVersion", "").startswith("kustomize"):
                continue
            by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind


def the(kind: str) -> dict[str, Any]:
    (only,) = kubernetes_objects()[kind]
    return only


def test_there_are_examples_and_they_are_documented() -> None:
    names = {path.relative_to(DEPLOY).as_posix() for path in yaml_files()}
    readme = (DEPLOY / "README.md").read_text()
    for name in names:
        assert f"({name})" in readme, f"{name} is not in deploy/README.md"
    assert "compose/compose.yaml" in names and "kubernetes/deployment.yaml" in names


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_every_file_parses(path: Path) -> None:
    assert documents(path)


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*")), ids=lambda p: p.name)
def test_only_settings_that_exist_are_named(path: Path) -> None:
    if path.is_dir():
        return
    named = set(re.findall(r"\bCDS_[A-Z0-9_]+\b", path.read_text()))
    assert named <= SETTINGS, f"{path.name}: {sorted(named - SETTINGS)} are not settings"


def test_compose_runs_two_replicas_on_postgresql() -> None:
    (compose,) = documents(COMPOSE)
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    service = services["cds-service"]
    assert service["deploy"]["replicas"] == 2
    environment = service["environment"]
    assert set(environment) <= SETTINGS
    assert environment["CDS_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "${CDS_PATIENT_HASH_KEY" in environment["CDS_PATIENT_HASH_KEY"]
    assert environment["CDS_TRUST_FILE"] == "/run/secrets/" + service["secrets"][0]["target"]
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(service["healthcheck"]["test"])
    build_parser().parse_args(service["command"])  # the command line the service accepts


def _container() -> dict[str, Any]:
    (container,) = the("Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def test_kubernetes_has_a_deployment_service_budget_and_secrets() -> None:
    kinds = kubernetes_objects()
    assert {"Deployment", "Service", "PodDisruptionBudget", "Secret"} <= set(kinds)
    deployment = the("Deployment")
    assert deployment["spec"]["replicas"] == 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert the("Service")["spec"]["selector"].items() <= labels.items()
    budget = the("PodDisruptionBudget")["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    assert budget["minAvailable"] < deployment["spec"]["replicas"]
    build_parser().parse_args(_container()["args"])


def test_kubernetes_probes_readyz_and_healthz_on_the_container_port() -> None:
    container = _container()
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ports
    args = container["args"]
    assert (
        str(ports[container["readinessProbe"]["httpGet"]["port"]]) == args[args.index("--port") + 1]
    )
    assert the("Service")["spec"]["ports"][0]["targetPort"] in ports


def test_kubernetes_takes_the_trust_file_and_the_hash_key_from_secrets() -> None:
    container = _container()
    environment = {item["name"]: item for item in container["env"]}
    assert set(environment) <= SETTINGS
    secrets = {s["metadata"]["name"]: s for s in kubernetes_objects()["Secret"]}
    # the patient-hash key (and the database URL with its password) only by reference
    for name in ("CDS_PATIENT_HASH_KEY", "CDS_DATABASE_URL"):
        reference = environment[name]["valueFrom"]["secretKeyRef"]
        assert "value" not in environment[name]
        assert reference["key"] in secrets[reference["name"]]["stringData"]
    # the trust file from a Secret volume, at the path CDS_TRUST_FILE names
    volumes = {v["name"]: v for v in the("Deployment")["spec"]["template"]["spec"]["volumes"]}
    trust_file = Path(environment["CDS_TRUST_FILE"]["value"])
    (mount,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == trust_file.parent]
    secret = secrets[volumes[mount["name"]]["secret"]["secretName"]]
    assert trust_file.name in secret["stringData"]


def test_the_example_trust_files_load(tmp_path: Path) -> None:
    load_trust_config(DEPLOY / "compose" / "trust.example.yaml")
    secrets = {s["metadata"]["name"]: s for s in kubernetes_objects()["Secret"]}
    trust = tmp_path / "trust.yaml"
    trust.write_text(secrets["cds-service-trust"]["stringData"]["trust.yaml"])
    assert load_trust_config(trust).clients


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_builds_the_manifests() -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(KUBERNETES)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(built) if doc)
    assert kinds == sorted(kind for kind, objects in kubernetes_objects().items() for _ in objects)
