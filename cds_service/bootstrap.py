"""Wire the real clients from settings: what ``serve`` and the CLI run on."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI

from ._logging import configure_logging, get_logger
from .app import Authenticator, create_app
from .checks import startup_content
from .content import Content, ContentError
from .errors import ConfigurationError
from .gathering import HttpFhirClient
from .pipeline import CdsService
from .profile import ProfileSet, build_profile, build_profile_set
from .settings import AuthMode, Settings, load_settings
from .store import Store, sqlite_file

if TYPE_CHECKING:
    from .trust import ClientProfile, TrustConfig

_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    content: Content
    store: Store
    service: CdsService
    authenticator: Authenticator | None


def embedded_hash_key(database_file: Path) -> str:
    """The patient-hash key of an embedded (SQLite) deployment, created once beside its database.

    Snooze and log correlation need every worker and every restart to hash a patient the same
    way. The file is created atomically (first writer wins) and readable by the owner only.
    """
    key_file = database_file.parent / "patient-hash.key"
    try:
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except PermissionError:
        raise ConfigurationError(
            f"cannot create {key_file} (permission denied): set CDS_PATIENT_HASH_KEY, "
            "or let the service write beside its database"
        ) from None
    except FileExistsError:
        for _ in range(50):  # another worker may be writing it this instant
            if key := key_file.read_text().strip():
                return key
            time.sleep(0.01)
        raise ConfigurationError(
            f"{key_file} is empty: delete it or set CDS_PATIENT_HASH_KEY"
        ) from None
    key = secrets.token_hex(32)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key)
    return key


def _with_hash_key(settings: Settings) -> Settings:
    if settings.patient_hash_key:
        return settings
    database_file = sqlite_file(settings.database_url)
    if database_file is None:
        _log.warning(
            "settings.patient_hash_key_missing",
            detail="set CDS_PATIENT_HASH_KEY: without it each process hashes patients with its "
            "own key, so snooze and log correlation do not work across workers or restarts",
        )
        return settings
    return settings.model_copy(update={"patient_hash_key": embedded_hash_key(database_file)})


def load_cards(settings: Settings) -> Content:
    """The content of ``CDS_CARDS_DIR``, loaded and checked (every card text rendered for every
    state the rules produce); a bad file or a failing check is a ``ConfigurationError``."""
    try:
        return startup_content(settings.cards_dir)
    except ContentError as exc:
        raise ConfigurationError(
            f"{exc}\nThe service does not start: fix the file, or set CDS_CARDS_DIR (now "
            f"{settings.cards_dir}); "
            "cds-service check-config DIR checks a folder"
        ) from None


def _trust_config(settings: Settings) -> TrustConfig | None:
    """The trust file: its clients under ``jwt``; with auth off, only its ``default_profile``
    (read when ``CDS_TRUST_FILE`` is set; it then needs no ``clients``)."""
    auth_on = settings.effective_auth_mode is AuthMode.JWT
    if settings.trust_file is None:
        if auth_on:
            raise ConfigurationError(
                "CDS_AUTH_MODE=jwt needs CDS_TRUST_FILE: the clients this service trusts "
                "(docs/security.md), or CDS_AUTH_MODE=off for development"
            )
        return None
    # Imported here: JWT verification (and its cryptography) is not needed without a trust file.
    from .trust import TrustConfigError, load_trust_config

    try:
        return load_trust_config(settings.trust_file, require_clients=auth_on)
    except TrustConfigError as exc:
        raise ConfigurationError(
            f"{exc}\nfix the file, or point CDS_TRUST_FILE at another (docs/security.md)"
        ) from None


def overlay_content(settings: Settings, trust_file: Path | None, profile: ClientProfile) -> Content:
    """``cards/`` with a profile's overlay folder on top, loaded and checked like ``cards/``;
    a problem is a ``ConfigurationError`` naming the trust file, the profile and the file."""
    assert profile.content is not None
    try:
        return startup_content(settings.cards_dir, (profile.content,))
    except ContentError as exc:
        raise ConfigurationError(
            f"trust file {trust_file}: {profile.where}.content ({profile.content_label}): "
            f"{exc}\nThe service does not start: fix the overlay, or remove it from the trust "
            "file; cds-service check-config checks the overlays the trust file names"
        ) from None


def load_profiles(settings: Settings, content: Content, trust: TrustConfig | None) -> ProfileSet:
    """The default profile (the trust file's ``default_profile``, if any) and, under ``jwt``,
    each client's; every overlay folder loaded and checked once."""
    if trust is None:
        return ProfileSet(build_profile(content, public_base_url=settings.public_base_url))
    auth_on = settings.effective_auth_mode is AuthMode.JWT
    profiles = build_profile_set(
        content,
        public_base_url=settings.public_base_url,
        default=trust.default_profile,
        clients=trust.client_profiles() if auth_on else None,
        load_overlay=lambda profile: overlay_content(settings, trust.source, profile),
    )
    _log.info(
        "profiles.loaded",
        default=profiles.default.name,
        clients={iss: profile.name for iss, profile in profiles.by_iss.items()},
        content={
            profile.name: profile.content.governance.version.as_dict()
            for profile in profiles.profiles
        },
    )
    return profiles


def build_runtime(settings: Settings | None = None) -> Runtime:
    """Load and check content (fail loudly), open the store, build the verifier for ``jwt``."""
    settings = settings or load_settings()
    configure_logging(settings.log_level, access_log=settings.access_log)
    content = load_cards(settings)
    trust = _trust_config(settings)
    profiles = load_profiles(settings, content, trust)
    store = Store.open(settings.database_url, retention_days=settings.audit_retention_days)
    try:
        settings = _with_hash_key(settings)
    except BaseException:
        store.close()
        raise
    authenticator: Authenticator | None = None
    if trust is not None and settings.effective_auth_mode is AuthMode.JWT:
        from .trust import TrustVerifier

        authenticator = TrustVerifier(
            trust.clients,
            replay_cache=store,
            require_typ=settings.jwt_require_typ,
            max_lifetime_s=settings.jwt_max_lifetime_s,
        ).verify
    else:
        _log.warning("auth.off", detail="authentication is off: development only")
    service = CdsService(
        settings=settings, profiles=profiles, store=store, fhir_client=HttpFhirClient()
    )
    return Runtime(settings, service.content, store, service, authenticator)


def build_app(settings: Settings | None = None) -> FastAPI:
    runtime = build_runtime(settings)
    app = create_app(
        runtime.service,
        authenticator=runtime.authenticator,
        database_check=runtime.store.health,
        on_shutdown=runtime.store.close,
    )
    auth_off = runtime.authenticator is None
    if runtime.settings.demo_fhir and not auth_off:
        _log.warning("demo.refused", detail="CDS_DEMO_FHIR is ignored when auth is on")
    if runtime.settings.demo_fhir_for(auth_off=auth_off):
        from .demo import mount_demo  # the demo's data and routes load only when it is on

        mount_demo(app)
    return app
