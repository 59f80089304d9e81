"""The two ways trust can fail: a bad configuration at start-up, a bad token at request time."""

from __future__ import annotations

from pathlib import Path


class TrustConfigError(ValueError):
    """The trust file cannot be used; the message names the file, where in it, and why."""

    def __init__(self, file: Path, location: str, reason: str) -> None:
        self.file = file
        self.location = location
        self.reason = reason
        where = f"{file}: {location}" if location else str(file)
        super().__init__(f"trust file {where}: {reason}")


class AuthenticationFailed(Exception):
    """A request's token was refused; ``reason`` is short and machine-readable, never the token."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
