"""The README's examples, run as written against a started service, so the README cannot drift.

A fenced block after ``<!-- readme-test: starts -->`` starts the service: its last command,
after any ``&&`` (the install before it is what this suite already runs in), is started in the
background (replacing the one before, as Ctrl-C would) and waited for. A block after
``<!-- readme-test: runs -->`` is a list of commands, each run with bash and expected to succeed;
curl is told to fail on an HTTP error (``--fail-with-body``, through a ``.curlrc``), and an
answer with ``cards`` must have some. The commands run in a folder laid out like a checkout
(``fixtures/`` and ``cards/`` linked), so the service's database lands in its ``var/``, as the
README says. The only rewrites: ``.venv/bin/`` is this interpreter's, and port 8080 a free port.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from cds_service.errors import env_name
from cds_service.settings import Settings

from .process_support import clean_environment, free_port
from .support import REPO

README = REPO / "README.md"
_MARKED = re.compile(r"<!-- readme-test: (starts|runs) -->\n```[a-z]*\n(.*?)```", re.S)


@dataclass(frozen=True)
class Block:
    kind: str  # "starts" or "runs"
    commands: tuple[str, ...]


def split_commands(script: str) -> list[str]:
    """The commands of a shell snippet: comment lines dropped, quoted newlines and ``\\`` line
    continuations kept inside their command."""
    commands: list[str] = []
    pending = ""
    for line in script.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending = f"{pending}\n{line}" if pending else line
        if pending.endswith("\\"):
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on on the next line
            continue
        commands.append(pending)
        pending = ""
    assert not pending, f"unfinished command: {pending!r}"
    return commands


def readme_blocks(text: str) -> list[Block]:
    return [Block(kind, tuple(split_commands(body))) for kind, body in _MARKED.findall(text)]


def test_the_readme_marks_its_examples() -> None:
    blocks = readme_blocks(README.read_text())
    assert [b.kind for b in blocks][:2] == ["starts", "runs"], "quick start first"
    started = [b.commands[-1].split("&&")[-1].strip() for b in blocks if b.kind == "starts"]
    assert started == [".venv/bin/cds-service serve", ".venv/bin/cds-service demo"]
    ran = " ".join(c for b in blocks if b.kind == "runs" for c in b.commands)
    for example in ("curl -s localhost:8080/cds-services", "evaluate", "report"):
        assert example in ran


def test_split_commands_keeps_quoted_newlines_together() -> None:
    script = "# a comment\ncurl -d '{\n  \"a\": 1\n}'\necho one \\\n  two\n\nls  # trailing\n"
    assert split_commands(script) == [
        "curl -d '{\n  \"a\": 1\n}'",
        "echo one \\\n  two",
        "ls  # trailing",
    ]


def test_the_readme_names_only_settings_that_exist_and_all_of_them() -> None:
    text = README.read_text()
    settings = {env_name(field) for field in Settings.model_fields}
    named = set(re.findall(r"\bCDS_[A-Z0-9_]+\b", text))
    assert named <= settings, sorted(named - settings)
    table = {m for m in re.findall(r"^\| `(CDS_[A-Z0-9_]+)` \|", text, re.M)}
    assert table == settings, sorted(settings ^ table)


def test_the_readme_links_only_inside_the_repository() -> None:
    text = README.read_text()
    assert "shared/" not in text and "/work/" not in text
    for target in re.findall(r"\]\(([^)#]+)[^)]*\)", text):
        if "://" in target:
            continue
        assert (REPO / target).exists(), f"README links to {target}, which does not exist"


class Runner:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.bin = str(Path(sys.executable).parent) + "/"
        curl_home = folder / ".curl"
        curl_home.mkdir()
        (curl_home / ".curlrc").write_text("--fail-with-body\n--max-time 30\n")
        self.env = clean_environment(
            CURL_HOME=str(curl_home), PATH=f"{self.bin}{os.pathsep}{os.environ['PATH']}"
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.log = folder / "service.log"

    def rewrite(self, command: str) -> str:
        return command.replace(".venv/bin/", self.bin).replace(
            "localhost:8080", f"localhost:{self.port}"
        )

    def start(self, command: str) -> None:
        self.stop()
        server = self.rewrite(command.split("&&")[-1].strip()) + f" --port {self.port}"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                ["bash", "-c", f"exec {server}"],
                cwd=self.folder,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"{command}: no answer within 60 s"
            time.sleep(0.1)

    def run(self, command: str) -> str:
        result = subprocess.run(
            ["bash", "-c", self.rewrite(command)],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(15)
            self.process = None


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    for name in ("fixtures", "cards"):
        (tmp_path / name).symlink_to(REPO / name)
    runner = Runner(tmp_path, free_port())
    try:
        yield runner
    finally:
        runner.stop()


def _check_answer(command: str, output: str) -> None:
    try:
        answer = json.loads(output)
    except ValueError:
        return
    if isinstance(answer, dict) and "cards" in answer:
        assert answer["cards"], f"{command}: no cards"


@pytest.mark.slow
def test_the_readme_examples_work_as_written(runner: Runner) -> None:
    blocks = readme_blocks(README.read_text())
    ran = 0
    for block in blocks:
        if block.kind == "starts":
            runner.start(block.commands[-1])
            continue
        assert runner.process is not None, "a runs block before any service was started"
        for command in block.commands:
            _check_answer(command, runner.run(command))
            ran += 1
    assert ran >= 6
    # the quick start's promises: on loopback, auth off with a warning, the embedded database
    log = runner.log.read_text()
    assert '"host": "127.0.0.1"' in log
    assert "authentication is off" in log
    assert (runner.folder / "var" / "cds-service.sqlite3").is_file()
