"""Wire the real clients from settings: what ``serve`` and the CLI run on."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from ._logging import configure_logging, get_logger
from .app import Authenticator, create_app
from .content import Content, load_content
from .demo import demo_enabled, mount_demo
from .gathering import RequestsFhirClient
from .pipeline import CdsService
from .settings import AuthMode, Settings
from .store import Store
from .trust import TrustVerifier, load_trust_config

_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    content: Content
    store: Store
    service: CdsService
    authenticator: Authenticator | None


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return None
    return Path(url.removeprefix("sqlite:///").split("?")[0])


def _sqlite_path_ready(url: str) -> None:
    path = _sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def embedded_hash_key(database_file: Path) -> str:
    """The patient-hash key of an embedded (SQLite) deployment, created once beside its database.

    Snooze and log correlation need every worker and every restart to hash a patient the same
    way. The file is created atomically (first writer wins) and readable by the owner only.
    """
    key_file = database_file.parent / "patient-hash.key"
    try:
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker may be writing it this instant
            if key := key_file.read_text().strip():
                return key
            time.sleep(0.01)
        raise SystemExit(f"{key_file} is empty: delete it or set CDS_PATIENT_HASH_KEY") from None
    key = secrets.token_hex(32)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key)
    return key


def _with_hash_key(settings: Settings) -> Settings:
    if settings.patient_hash_key:
        return settings
    database_file = _sqlite_file(settings.database_url)
    if database_file is None:
        _log.warning(
            "settings.patient_hash_key_missing",
            detail="set CDS_PATIENT_HASH_KEY: without it each process hashes patients with its "
            "own key, so snooze and log correlation do not work across workers or restarts",
        )
        return settings
    return settings.model_copy(update={"patient_hash_key": embedded_hash_key(database_file)})


def build_runtime(settings: Settings | None = None) -> Runtime:
    """Load content (fail loudly), open the store, and build the verifier for ``jwt`` mode."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    content = load_content(settings.cards_dir)
    _sqlite_path_ready(settings.database_url)
    settings = _with_hash_key(settings)
    store = Store.open(settings.database_url, retention_days=settings.audit_retention_days)
    authenticator: Authenticator | None = None
    if settings.effective_auth_mode is AuthMode.JWT:
        if settings.trust_file is None:
            raise SystemExit("CDS_AUTH_MODE=jwt needs CDS_TRUST_FILE")
        config = load_trust_config(settings.trust_file)
        authenticator = TrustVerifier(config.clients, replay_cache=store).verify
    else:
        _log.warning("auth.off", detail="authentication is off: development only")
    service = CdsService(
        settings=settings, content=content, store=store, fhir_client=RequestsFhirClient()
    )
    return Runtime(settings, content, store, service, authenticator)


def build_app(settings: Settings | None = None) -> FastAPI:
    runtime = build_runtime(settings)
    app = create_app(
        runtime.service,
        authenticator=runtime.authenticator,
        ready_check=runtime.store.ping,
        on_shutdown=runtime.store.close,
    )
    if demo_enabled(runtime.settings, auth_off=runtime.authenticator is None):
        mount_demo(app)
    return app
