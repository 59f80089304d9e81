"""Settings for tests: the defaults plus explicit overrides, never a ``.env`` file."""

from __future__ import annotations

from typing import Any

from cds_service.settings import Settings


def make_settings(**overrides: Any) -> Settings:
    """``Settings`` without reading ``.env``; ``CDS_*`` variables are cleared by the conftest."""
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]
