"""What start-up leaves out: modules the serving path does not import, and the faster YAML parser
reading ``cards/`` exactly as the pure-Python one does. (How long start-up takes is measured by
the benchmark, ``bench.coldstart``, never here.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cds_service.content import _loader

from .support import CARDS


@pytest.mark.parametrize("path", sorted(CARDS.rglob("*.yaml")), ids=lambda p: p.name)
def test_cards_parse_the_same_with_the_fast_loader(path: Path) -> None:
    assert _loader._read_yaml(path) == yaml.safe_load(path.read_text(encoding="utf-8"))


def test_the_fast_loader_is_used_when_pyyaml_has_it() -> None:
    if getattr(yaml, "__with_libyaml__", False):
        assert _loader._YAML_LOADER is yaml.CSafeLoader


_LOADED = """
import json, sys
from cds_service.bootstrap import build_app
build_app()
print(json.dumps(sorted(sys.modules)))
"""


def test_serving_with_auth_off_imports_no_jwt_alembic_demo_or_postgresql(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cds.sqlite3'}"
    env = {"CDS_DATABASE_URL": url, "CDS_LOG_LEVEL": "WARNING", "PATH": "/usr/bin:/bin"}
    for _ in range(2):  # the first start creates the database (and needs Alembic for that)
        result = subprocess.run(
            [sys.executable, "-c", _LOADED],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            check=True,
            timeout=120,
        )
    loaded = set(json.loads(result.stdout))
    for module in (
        "alembic",
        "jwt",
        "cryptography",
        "cds_service.trust",
        "cds_service.demo",
        "sqlalchemy.dialects.postgresql",
        "pydantic.v1",
        "websockets",
    ):
        assert module not in loaded, f"{module} is imported at start-up"
    assert "cds_service.pipeline" in loaded  # the check sees a real start-up
