"""Errors in how the service is configured or invoked, reported to the operator in one or two lines.

A ``ConfigurationError`` is what ``cds-service`` prints (without a traceback) and exits non-zero
on: its message names the setting, file or value at fault and says how to fix it.
"""

from __future__ import annotations


class ConfigurationError(Exception):
    """The service cannot start, or a command cannot run, as configured; the message says why."""


# Settings whose values are never echoed back in a message or a log line.
_SECRET_MARKERS = ("key", "token", "secret", "password")


def is_secret_setting(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


def env_name(field: str) -> str:
    """The environment variable that sets ``field``: ``log_level`` → ``CDS_LOG_LEVEL``."""
    return "CDS_" + field.upper()
