from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from cds_service.simulate import _worker


@pytest.fixture(autouse=True)
def _keep_process_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``cds-service simulate`` logs errors only and tunes the GC for a process of its own; in
    the test process neither may outlive the test."""
    monkeypatch.setattr(_worker, "settle_heap", lambda: None)
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)
