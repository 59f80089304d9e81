"""``cds-service check-config DIR`` as a subprocess: exit 0 on the shipped cards/, exit 1 with
the file and field on a broken copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.facts.builders import CARDS, REPO

try:  # The CLI imports the whole service; skip (loudly) only if it cannot be imported yet.
    import cds_service.cli  # noqa: F401

    CLI_IMPORT_ERROR = ""
except Exception as exc:  # pragma: no cover - depends on other modules landing
    CLI_IMPORT_ERROR = f"cds_service.cli does not import yet: {exc!r}"

pytestmark = pytest.mark.skipif(bool(CLI_IMPORT_ERROR), reason=CLI_IMPORT_ERROR)


def check_config(directory: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    return subprocess.run(
        [sys.executable, "-m", "cds_service.cli", "check-config", str(directory)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_shipped_cards_pass() -> None:
    result = check_config(CARDS)
    assert result.returncode == 0, result.stderr
    assert f"{CARDS}: OK (11 topics, 10 analytes)" in result.stdout


def test_broken_threshold_fails_naming_file_and_field(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    shutil.copytree(CARDS, cards)
    settings = cards / "settings.yaml"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace("{mmol_per_l: 0.66,", "{mmol_per_l: low,"),
        encoding="utf-8",
    )
    result = check_config(cards)
    assert result.returncode == 1
    assert f"{settings}: thresholds.mg_low.mmol_per_l" in result.stderr
    assert result.stdout == ""


def test_broken_topic_template_fails_naming_file_and_field(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    shutil.copytree(CARDS, cards)
    topic = cards / "topics" / "mg-declining.yaml"
    topic.write_text(
        topic.read_text(encoding="utf-8").replace("{{ cni }}:", "{{ cni :", 1), encoding="utf-8"
    )
    result = check_config(cards)
    assert result.returncode == 1
    assert f"{topic}: summary.info" in result.stderr


def test_missing_topic_file_fails(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    shutil.copytree(CARDS, cards)
    (cards / "topics" / "antacid-tacrolimus.yaml").unlink()
    result = check_config(cards)
    assert result.returncode == 1
    assert "topic files missing: ['antacid-tacrolimus']" in result.stderr


def test_broken_advice_template_fails_naming_file_and_field(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    shutil.copytree(CARDS, cards)
    advice = cards / "advice.yaml"
    text = advice.read_text(encoding="utf-8")
    assert "IV {{ iv_mg }} already" in text
    advice.write_text(text.replace("IV {{ iv_mg }} already", "IV {{ iv_mg } already"), "utf-8")
    result = check_config(cards)
    assert result.returncode == 1
    assert f"{advice}: actions.iv_given: line 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_cited_source_fails_naming_file_and_field(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    shutil.copytree(CARDS, cards)
    topic = cards / "topics" / "mg-digoxin.yaml"
    text = topic.read_text(encoding="utf-8")
    assert "cite('digoxin-label', '003', '004')" in text
    topic.write_text(
        text.replace("cite('digoxin-label', '003', '004')", "cite('digoxin-label', '999')", 1),
        encoding="utf-8",
    )
    result = check_config(cards)
    assert result.returncode == 1
    assert f"{topic}: detail: cites sources not in sources.yaml: ['999']" in result.stderr
