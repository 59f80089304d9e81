"""Running ``cds-service`` as a process: a free port, a clean environment, its error message."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from .support import REPO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment(**overrides: str) -> dict[str, str]:
    """This process's environment without any ``CDS_*`` variable, plus ``overrides``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("CDS_")}, **overrides}


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cds_service.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean_environment(**(env or {})),
        timeout=timeout,
    )


def error_lines(stderr: str) -> list[str]:
    """The error message: its ``cds-service: error:`` line and the indented line after it."""
    lines = stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("cds-service: error: "))
    message = [lines[start]]
    message += [line for line in lines[start + 1 :] if line.startswith("  ")]
    return message
