"""Wire the real clients from settings: what ``serve`` and the CLI run on."""

from __future__ import annotations

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


def _sqlite_path_ready(url: str) -> None:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def build_runtime(settings: Settings | None = None) -> Runtime:
    """Load content (fail loudly), open the store, and build the verifier for ``jwt`` mode."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    content = load_content(settings.cards_dir)
    _sqlite_path_ready(settings.database_url)
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
    if demo_enabled(auth_off=runtime.authenticator is None):
        mount_demo(app)
    return app
