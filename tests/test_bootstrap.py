"""Start-up wiring: the embedded patient-hash key."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cds_service.bootstrap import build_runtime, embedded_hash_key

from .settings_support import make_settings


def test_embedded_hash_key_is_created_once_and_private(tmp_path: Path) -> None:
    database = tmp_path / "cds.sqlite3"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: embedded_hash_key(database), range(16)))
    assert len(keys) == 1 and len(next(iter(keys))) == 64
    mode = stat.S_IMODE((tmp_path / "patient-hash.key").stat().st_mode)
    assert mode == 0o600


def test_runtime_uses_the_configured_key_or_the_embedded_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'cds.sqlite3'}"
    runtime = build_runtime(make_settings(database_url=url))
    try:
        embedded = runtime.settings.patient_hash_key
        assert embedded == (tmp_path / "db" / "patient-hash.key").read_text()
    finally:
        runtime.store.close()
    again = build_runtime(make_settings(database_url=url))
    try:
        assert again.settings.patient_hash_key == embedded
    finally:
        again.store.close()
    configured = build_runtime(make_settings(database_url=url, patient_hash_key="site-key"))
    try:
        assert configured.settings.patient_hash_key == "site-key"
    finally:
        configured.store.close()
