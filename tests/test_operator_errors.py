"""Every command-line and configuration error: one or two lines naming the setting, file or value
and the fix, a non-zero exit, no traceback; each class of error driven through a real process."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from uvicorn.supervisors import Multiprocess

from cds_service.cli import main

from .process_support import error_lines, free_port, run_cli
from .support import REPO

SCENARIO = REPO / "fixtures" / "scenarios" / "ckd4-critical-mg-mgdl.json"
PASSWORD = "s3cret-pw"
FREE_PORT = "{free port}"


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    # Fragments the message must contain: what is at fault and what to do.
    says: tuple[str, ...] = ()


def _cases(tmp: Path) -> dict[str, Case]:
    empty = tmp / "empty.json"
    empty.write_text("")
    truncated = tmp / "truncated.json"
    truncated.write_text(SCENARIO.read_text()[:200])
    folder = tmp / "folder.json"
    folder.mkdir()
    no_hook = tmp / "no-hook.json"
    no_hook.write_text('{"context": {}}')
    bad_trust = tmp / "trust.yaml"
    bad_trust.write_text("clients:\n  - iss: https://ehr.example.org\n")
    garbage_db = tmp / "garbage.sqlite3"
    garbage_db.write_text("not a database")
    broken_cards = tmp / "cards"
    broken_cards.mkdir()
    db = f"sqlite:///{tmp / 'db' / 'cds.sqlite3'}"
    serve = ("serve", "--port", FREE_PORT)  # a free port: each case fails for its own reason
    return {
        "evaluate a missing file": Case(
            ("evaluate", str(tmp / "nope.json")), says=("nope.json", "no such file")
        ),
        "evaluate an empty file": Case(("evaluate", str(empty)), says=("empty.json", "is empty")),
        "evaluate a truncated file": Case(
            ("evaluate", str(truncated)), says=("truncated.json", "not valid JSON", "complete")
        ),
        "evaluate a directory": Case(
            ("evaluate", str(folder)), says=("folder.json", "is a directory")
        ),
        "evaluate without a hook": Case(
            ("evaluate", str(no_hook)), says=("no-hook.json", "patient-view")
        ),
        "evaluate --now not a date": Case(
            ("evaluate", str(SCENARIO), "--now", "yesterday"), says=("--now", "ISO")
        ),
        "evaluate --cards not a directory": Case(
            ("evaluate", str(SCENARIO), "--cards", str(tmp / "none")), says=("none", "--cards")
        ),
        "a database URL that is not one": Case(
            ("report",), {"CDS_DATABASE_URL": "var/cds.sqlite3"}, ("CDS_DATABASE_URL", "sqlite:///")
        ),
        "an unsupported database": Case(
            ("report",), {"CDS_DATABASE_URL": "mysql://u@h/db"}, ("CDS_DATABASE_URL", "mysql")
        ),
        "the psycopg2 driver": Case(
            serve,
            {"CDS_DATABASE_URL": f"postgresql+psycopg2://u:{PASSWORD}@localhost/db"},
            ("CDS_DATABASE_URL", "psycopg2", "postgresql+psycopg://"),
        ),
        "a database server that does not answer": Case(
            ("report",),
            {"CDS_DATABASE_URL": f"postgresql+psycopg://u:{PASSWORD}@127.0.0.1:9/db"},
            ("cannot open the database", "u:***@127.0.0.1:9", "CDS_DATABASE_URL"),
        ),
        "a file that is not a database": Case(
            ("report",),
            {"CDS_DATABASE_URL": f"sqlite:///{garbage_db}"},
            ("garbage.sqlite3", "not a database", "CDS_DATABASE_URL"),
        ),
        "a database folder that cannot be created": Case(
            serve,
            {"CDS_DATABASE_URL": f"sqlite:///{empty}/db.sqlite3"},
            ("cannot create the folder", "CDS_DATABASE_URL"),
        ),
        "report with no database": Case(
            ("report",),
            {"CDS_DATABASE_URL": db},
            (f"no database at {tmp / 'db' / 'cds.sqlite3'}", "CDS_DATABASE_URL"),
        ),
        "CDS_AUTH_MODE=jtw": Case(
            serve, {"CDS_AUTH_MODE": "jtw"}, ("CDS_AUTH_MODE='jtw'", "'off' or 'jwt'")
        ),
        "CDS_LOG_LEVEL=LOUD": Case(
            ("check-config", str(REPO / "cards")),
            {"CDS_LOG_LEVEL": "LOUD"},
            ("CDS_LOG_LEVEL='LOUD'", "WARNING"),
        ),
        "a number out of range": Case(
            ("report",), {"CDS_FHIR_TIMEOUT_S": "-1"}, ("CDS_FHIR_TIMEOUT_S='-1'", "greater")
        ),
        "a cards/ folder that does not exist": Case(
            serve,
            {"CDS_CARDS_DIR": str(tmp / "no-cards"), "CDS_DATABASE_URL": db},
            ("no-cards", "CDS_CARDS_DIR"),
        ),
        "a cards/ folder without its files": Case(
            serve,
            {"CDS_CARDS_DIR": str(broken_cards), "CDS_DATABASE_URL": db},
            ("settings.yaml", "CDS_CARDS_DIR", "check-config"),
        ),
        "jwt without a trust file": Case(
            serve, {"CDS_AUTH_MODE": "jwt", "CDS_DATABASE_URL": db}, ("CDS_TRUST_FILE",)
        ),
        "a bad trust file": Case(
            serve,
            {"CDS_TRUST_FILE": str(bad_trust), "CDS_DATABASE_URL": db},
            ("trust.yaml", "clients[0]", "CDS_TRUST_FILE"),
        ),
    }


def _case_names() -> list[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return list(_cases(Path(tmp)))


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process, a case that failed to fail would start serving: make that a test failure."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the service started")

    monkeypatch.setattr(uvicorn.Server, "run", refuse)
    monkeypatch.setattr(Multiprocess, "run", refuse)


@pytest.mark.usefixtures("no_server")
@pytest.mark.parametrize("name", _case_names())
def test_each_error_is_one_or_two_lines_and_exit_code_2(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    case = _cases(tmp_path)[name]
    args = [str(free_port()) if arg == FREE_PORT else arg for arg in case.args]
    for variable, value in case.env.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.chdir(tmp_path)  # no .env file, and relative paths land here
    assert main(args) == 2  # returned, not raised: nothing for Python to print a traceback of
    captured = capsys.readouterr()
    message = error_lines(captured.err)
    assert 1 <= len(message) <= 2, captured.err
    text = "\n".join(message)
    for fragment in case.says:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    assert PASSWORD not in captured.err + captured.out


@pytest.mark.parametrize(
    "name",
    [  # one of each class: a file, the database, a setting, cards/, the trust file
        "evaluate a truncated file",
        "the psycopg2 driver",
        "CDS_AUTH_MODE=jtw",
        "a cards/ folder without its files",
        "a bad trust file",
    ],
)
def test_a_process_prints_the_message_and_no_traceback(name: str, tmp_path: Path) -> None:
    case = _cases(tmp_path)[name]
    args = [str(free_port()) if arg == FREE_PORT else arg for arg in case.args]
    result = run_cli(*args, env=case.env, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(error_lines(result.stderr)) in (1, 2)
    assert PASSWORD not in result.stderr + result.stdout


def test_report_creates_no_database(tmp_path: Path) -> None:
    database = tmp_path / "var" / "cds-service.sqlite3"
    result = run_cli("report", cwd=tmp_path)  # the default URL, relative to the current folder
    assert result.returncode == 2
    assert f"no database at {database}" in result.stderr
    assert not (tmp_path / "var").exists()


def test_a_port_in_use_is_reported_before_the_service_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            "serve",
            "--port",
            str(port),
            env={"CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"},
        )
    assert result.returncode == 2
    assert error_lines(result.stderr) == [
        f"cds-service: error: port {port} on 127.0.0.1 is already in use: stop the process "
        "using it, or choose another port with --port"
    ]
    assert "startup complete" not in result.stderr
    assert "Traceback" not in result.stderr


def test_command_line_usage_errors_are_argparse_messages() -> None:
    result = run_cli("serve", "--workers", "0")
    assert result.returncode == 2
    assert "--workers: must be at least 1" in result.stderr
    assert "Traceback" not in result.stderr
