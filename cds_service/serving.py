"""Running the HTTP server: where it listens, what it says at start, and failing before it starts.

Everything that can be wrong (settings, ``cards/``, the trust file, the database, the port) is
found before uvicorn starts, so it is reported as one ``ConfigurationError`` and never after
"Application startup complete".
"""

from __future__ import annotations

import errno
import gc
import ipaddress
import os
import socket
import sys
from collections.abc import Callable
from typing import Any, TextIO

from . import __version__
from ._logging import get_logger
from .errors import ConfigurationError, env_name, is_secret_setting
from .settings import AuthMode, Settings

_log = get_logger(__name__)

LOOPBACK = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"
# Read from the environment by other parts of the package, not by Settings.
OTHER_VARIABLES = frozenset({"CDS_FIXTURES_DIR"})
_RULE = "!" * 78


def default_host(settings: Settings) -> str:
    """Loopback while authentication is off (nothing else can call it); all interfaces with JWT."""
    return LOOPBACK if settings.effective_auth_mode is AuthMode.OFF else ALL_INTERFACES


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposed_warning(host: str, port: int) -> str:
    """The banner for a service reachable from other machines with authentication off."""
    return f"""{_RULE}
!!  AUTHENTICATION IS OFF and the service listens on {host}:{port}: anyone who can
!!  reach this machine can call it. For trying it out only. Before real use, set
!!  CDS_TRUST_FILE (docs/security.md), or serve on 127.0.0.1 (the default with auth off).
{_RULE}"""


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (not yet listening), or a ``ConfigurationError`` saying
    why it cannot be: checked before the service starts, and handed to uvicorn as is."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(_bind_problem(host, port, exc)) from None
    sock.set_inheritable(True)
    return sock


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use: stop the process using it, "
            "or choose another port with --port"
        )
    if exc.errno == errno.EACCES:
        return (
            f"not allowed to listen on port {port} (ports below 1024 need privileges): "
            "choose another with --port"
        )
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return f"--host {host} is not an address of this machine: use 127.0.0.1 or 0.0.0.0"
    return f"cannot listen on {host}:{port} ({exc.strerror or exc}): check --host and --port"


def _shown(settings: Settings, field: str, value: Any) -> Any:
    from .store import describe_url, sqlite_file

    if field == "database_url":
        return describe_url(str(value))
    if field == "patient_hash_key":
        if value:
            return "set"
        if sqlite_file(settings.database_url) is not None:
            return "generated once into patient-hash.key beside the database"
        return "NOT SET: each worker hashes patients with its own key"
    if is_secret_setting(field):
        return "set" if value else "not set"
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def effective_configuration(
    settings: Settings, *, host: str, port: int, workers: int
) -> dict[str, Any]:
    """What ``serve`` runs with, every setting included, no secret: the database password,
    the patient-hash key and any token are never shown."""
    auth_off = settings.effective_auth_mode is AuthMode.OFF
    shown = {
        field: _shown(settings, field, getattr(settings, field))
        for field in type(settings).model_fields
    }
    # Named so that the log's redaction (which blanks any *_key field) lets the source through.
    shown["patient_hash_key_source"] = shown.pop("patient_hash_key")
    shown.update(
        auth_mode=settings.effective_auth_mode.value,
        cors_origins=settings.cors_origins_for(auth_off=auth_off),
        demo_fhir=settings.demo_fhir_for(auth_off=auth_off),
    )
    shown_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return {
        "version": __version__,
        "url": f"http://{shown_host}:{port}",
        "host": host,
        "port": port,
        "workers": workers,
        **shown,
    }


def unknown_variables(environ: dict[str, str] | None = None) -> list[str]:
    """``CDS_*`` variables that set nothing (a typo, or a setting from another version)."""
    environ = dict(os.environ) if environ is None else environ
    known = {env_name(field) for field in Settings.model_fields} | OTHER_VARIABLES
    return sorted(name for name in environ if name.startswith("CDS_") and name not in known)


def serve(
    settings: Settings,
    *,
    host: str | None,
    port: int,
    workers: int,
    announce: Callable[[], None] | None = None,
    err: TextIO | None = None,
) -> int:
    """Check, build and run the service; ``announce`` prints what a command shows once it is
    certain to start. Any problem raises ``ConfigurationError`` before uvicorn starts."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from .bootstrap import build_app, build_runtime

    err = err or sys.stderr
    host = host or default_host(settings)
    sock = bind(host, port)
    try:
        if workers == 1:
            app: Any = build_app(settings)
        else:
            # Each worker builds its own app (the store's writer thread does not fork): check
            # here, once, everything that would make every worker fail.
            build_runtime(settings).store.close()
            app = "cds_service.bootstrap:build_app"
            gc.enable()  # this process only supervises; each worker settles its own heap
    except BaseException:
        sock.close()
        raise
    if settings.effective_auth_mode is AuthMode.OFF and not is_loopback(host):
        print(exposed_warning(host, port), file=err, flush=True)
        _log.warning("serve.exposed", detail="authentication is off on a non-loopback address")
    if unknown := unknown_variables():
        _log.warning("settings.unknown", variables=unknown, detail="not settings: ignored")
    _log.info(
        "serve.configuration",
        **effective_configuration(settings, host=host, port=port, workers=workers),
    )
    if announce is not None:
        announce()
    config = uvicorn.Config(
        app,
        factory=workers > 1,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=settings.access_log,  # off unless asked for; never with query strings
        # uvicorn's httptools protocol with limits on slow and huge clients (server.py).
        http="cds_service.server:LimitedHttpToolsProtocol",
        loop="uvloop",
        ws="none",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    try:
        if workers > 1:
            Multiprocess(config, sockets=[sock]).run()
            return 0
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0 if server.started or workers > 1 else 1
