from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _keep_log_level() -> Iterator[None]:
    """``cds-service simulate`` logs errors only; the tests after these keep their level."""
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)
