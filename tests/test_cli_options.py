"""The command line explains itself (every option with its default) and honours CDS_LOG_LEVEL."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pytest

from cds_service.cli import build_parser, main
from cds_service.store import Store

from .support import REPO

SCENARIO = REPO / "fixtures" / "scenarios" / "ckd4-critical-mg-mgdl.json"


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subparsers.choices)


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_option_has_help_and_its_default(command: str) -> None:
    parser = _commands()[command]
    text = " ".join(parser.format_help().split())  # as read, whatever the line wrapping
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{command} {action.dest}: no help"
        if action.option_strings and action.default not in (None, False):
            assert f"(default: {action.default})" in text, f"{command} {action.dest}"
        if action.default is None and not action.required and action.nargs != 0:
            assert "(default" in action.help, f"{command} {action.dest}: default not said"
    assert parser.description


def test_serve_help_says_where_it_listens() -> None:
    text = _commands()["serve"].format_help()
    assert "127.0.0.1 with auth off" in " ".join(text.split())
    assert "(default: 8080)" in text and "(default: 1)" in text


def test_evaluate_documents_cards() -> None:
    text = " ".join(_commands()["evaluate"].format_help().split())
    assert "--cards CARDS use this cards/ directory (default: CDS_CARDS_DIR" in text


def test_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    from cds_service import __version__

    assert capsys.readouterr().out == f"cds-service {__version__}\n"


def _log_levels(stderr: str) -> list[str]:
    return [json.loads(line)["level"] for line in stderr.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("level", ["INFO", "WARNING"])
def test_log_level_governs_report(
    level: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite:///{tmp_path / 'cds.sqlite3'}"
    Store.open(url).close()
    capsys.readouterr()  # what opening it logged here
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CDS_DATABASE_URL", url)
    monkeypatch.setenv("CDS_LOG_LEVEL", level)
    assert main(["report"]) == 0
    err = capsys.readouterr().err
    assert f"database: sqlite:///{tmp_path / 'cds.sqlite3'}" in err
    levels = _log_levels(err)
    if level == "WARNING":
        assert set(levels) <= {"warning", "error"}
    else:
        assert "info" in levels  # store.opened


def test_log_level_governs_evaluate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CDS_LOG_LEVEL", "ERROR")
    assert main(["evaluate", str(SCENARIO)]) == 0
    assert _log_levels(capsys.readouterr().err) == []


@pytest.mark.parametrize(
    ("level", "alembic"), [("DEBUG", "DEBUG"), ("INFO", "WARNING"), ("ERROR", "ERROR")]
)
def test_log_level_governs_third_party_loggers(level: str, alembic: str) -> None:
    from cds_service._logging import configure_logging

    try:
        configure_logging(level)
        assert logging.getLogger("uvicorn.error").getEffectiveLevel() == logging.getLevelName(level)
        # Alembic's start-up lines and SQLAlchemy's statements show at DEBUG only.
        for chatty in ("alembic.runtime.migration", "sqlalchemy.engine"):
            assert logging.getLogger(chatty).getEffectiveLevel() == logging.getLevelName(alembic)
    finally:
        configure_logging("INFO")
