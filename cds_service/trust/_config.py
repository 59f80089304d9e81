"""Loading the trust file (YAML or JSON): which CDS clients are trusted, with which keys."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .._logging import get_logger
from ._errors import TrustConfigError
from ._keys import (
    ALLOWED_ALGORITHMS,
    DEFAULT_ALGORITHMS,
    KeyRejected,
    KeySet,
    jwk_set_members,
    parse_jwk,
)
from ._models import ClientProfile, TrustConfig, TrustedClient
from ._presets import PRESETS, Preset
from ._profiles import parse_profile

_log = get_logger(__name__)

_TOP_LEVEL_FIELDS = frozenset({"clients", "default_profile"})
_KEY_SOURCES = ("jwks", "jwks_file", "jku")
_ENTRY_FIELDS = frozenset(
    {
        "iss",
        "algorithms",
        "tenants",
        "preset",
        "description",
        "fhir_servers",
        "profile",
        *_KEY_SOURCES,
    }
)
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True, slots=True)
class _Where:
    """A place in the trust file, for error messages."""

    file: Path
    index: int

    def error(self, field: str, reason: str) -> TrustConfigError:
        location = f"clients[{self.index}]" + (f".{field}" if field else "")
        return TrustConfigError(self.file, location, reason)


def _parse_text(path: Path, text: str) -> object:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise TrustConfigError(path, where, f"invalid JSON: {exc.msg}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise TrustConfigError(path, where, f"invalid YAML: {problem}") from exc


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise TrustConfigError(path, "", "file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise TrustConfigError(path, "", f"cannot be read: {exc}") from exc


def _top_level(path: Path, document: object) -> Mapping[str, Any]:
    if not isinstance(document, Mapping):
        raise TrustConfigError(path, "", "expected a mapping with a 'clients' list")
    for name in document:
        if name not in _TOP_LEVEL_FIELDS:
            expected = "', '".join(sorted(_TOP_LEVEL_FIELDS))
            raise TrustConfigError(path, str(name), f"unknown field (expected '{expected}')")
    return document


def _client_entries(path: Path, document: Mapping[str, Any], *, required: bool) -> list[object]:
    if "clients" not in document and not required:
        return []
    clients = document.get("clients")
    if not isinstance(clients, list) or not clients:
        raise TrustConfigError(path, "clients", "must be a non-empty list of clients")
    return clients


def _string_list(where: _Where, field: str, value: object) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise where.error(field, "must be a non-empty list of strings")
    for position, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise where.error(f"{field}[{position}]", "must be a non-empty string")
    return items


def _iss(where: _Where, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise where.error("iss", "must be a non-empty string (the exact issuer)")
    if value != value.strip():
        raise where.error("iss", "has leading or trailing spaces; iss is matched exactly")
    return value


def _algorithm_problem(name: str) -> str | None:
    if name.lower() == "none":
        return "'none' is never allowed: tokens must be signed"
    if name.upper().startswith("HS"):
        return f"{name!r} is HMAC, never allowed: CDS clients sign with a private key"
    if name not in ALLOWED_ALGORITHMS:
        return f"unsupported algorithm {name!r} (allowed: {', '.join(sorted(ALLOWED_ALGORITHMS))})"
    return None


def _algorithms(where: _Where, value: object) -> frozenset[str]:
    names = _string_list(where, "algorithms", value)
    for position, name in enumerate(names):
        if problem := _algorithm_problem(name):
            raise where.error(f"algorithms[{position}]", problem)
    return frozenset(names)


def _tenants(where: _Where, value: object) -> frozenset[str]:
    if isinstance(value, list) and not value:
        raise where.error("tenants", "is empty: omit it to allow any tenant")
    return frozenset(_string_list(where, "tenants", value))


def _jku_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        return f"{url!r} is not a valid URL"
    if parts.scheme == "https" and host:
        pass
    elif parts.scheme == "http" and host in _LOOPBACK_HOSTS:
        pass  # plain HTTP only on this machine, for tests and local development
    else:
        return f"{url!r} must be an https URL"
    if parts.username is not None or parts.password is not None:
        return f"{url!r} must not carry credentials"
    if parts.fragment:
        return f"{url!r} must not have a fragment"
    return None


def _fhir_server_problem(url: str) -> str | None:
    if (problem := _jku_problem(url)) is not None:
        return problem
    parts = urlsplit(url)  # valid: _jku_problem parsed it
    if parts.query:
        return f"{url!r} must not have a query"
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        return f"{url!r} must not have dot segments"
    return None


def _fhir_servers(where: _Where, value: object) -> tuple[str, ...]:
    if isinstance(value, list) and not value:
        raise where.error("fhir_servers", "is empty: omit it to allow any public FHIR server")
    urls = _string_list(where, "fhir_servers", value)
    for position, url in enumerate(urls):
        if problem := _fhir_server_problem(url):
            raise where.error(f"fhir_servers[{position}]", problem)
    return tuple(urls)


def _jku(where: _Where, value: object) -> tuple[str, ...]:
    urls = _string_list(where, "jku", value)
    for position, url in enumerate(urls):
        if problem := _jku_problem(url):
            raise where.error(f"jku[{position}]", problem)
    return tuple(urls)


def _pinned_jwks(where: _Where, field: str, value: object) -> Mapping[str, Any]:
    """A JWK Set whose every key must be usable: a pinned key set is checked in full."""
    if not isinstance(value, Mapping):
        raise where.error(field, "a JWK Set must be a JSON object with a 'keys' array")
    try:
        members = jwk_set_members(value)
    except KeyRejected as exc:
        raise where.error(field, str(exc)) from exc
    if not members:
        raise where.error(field, "the JWK Set has no keys")
    for position, member in enumerate(members):
        try:
            parse_jwk(member)
        except KeyRejected as exc:
            raise where.error(f"{field}.keys[{position}]", str(exc)) from exc
    return value


def _jwks_file(where: _Where, value: object) -> Mapping[str, Any]:
    if not isinstance(value, str) or not value.strip():
        raise where.error("jwks_file", "must be a path to a JWK Set file")
    key_file = Path(value)
    if not key_file.is_absolute():
        key_file = where.file.parent / key_file
    try:
        text = key_file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise where.error("jwks_file", f"{key_file}: file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise where.error("jwks_file", f"{key_file}: cannot be read: {exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        reason = f"{key_file}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise where.error("jwks_file", reason) from exc
    return _pinned_jwks(where, f"jwks_file({value})", document)


def _key_source(
    where: _Where, entry: Mapping[str, Any], source: str
) -> tuple[Mapping[str, Any] | None, tuple[str, ...]]:
    if source == "jwks":
        return _pinned_jwks(where, "jwks", entry["jwks"]), ()
    if source == "jwks_file":
        return _jwks_file(where, entry["jwks_file"]), ()
    return None, _jku(where, entry["jku"])


def _preset(where: _Where, value: object) -> Preset:
    if not isinstance(value, str) or value not in PRESETS:
        known = ", ".join(sorted(PRESETS))
        raise where.error("preset", f"unknown preset {value!r} (known: {known})")
    return PRESETS[value]


def _check_fields(where: _Where, entry: object) -> Mapping[str, Any]:
    if not isinstance(entry, Mapping):
        raise where.error("", "must be a mapping")
    for name in entry:
        if name not in _ENTRY_FIELDS:
            allowed = ", ".join(sorted(_ENTRY_FIELDS))
            raise where.error(str(name), f"unknown field (allowed: {allowed})")
    return entry


def _source(where: _Where, entry: Mapping[str, Any]) -> str | None:
    sources = [name for name in _KEY_SOURCES if name in entry]
    if len(sources) > 1:
        raise where.error("", f"has {' and '.join(sources)}: give exactly one key source")
    return sources[0] if sources else None


def _warn_for_preset(name: str, preset: Preset, entry: Mapping[str, Any]) -> None:
    if preset.warning:
        _log.warning("trust.preset_development_only", preset=name, detail=preset.warning)
    if preset.placeholder and not ("iss" in entry and "jku" in entry):
        _log.warning(
            "trust.preset_placeholder",
            preset=name,
            detail=f"{name}: set iss and jku to your organisation's values; "
            "the preset's are placeholders that match no real client",
        )


@dataclass(frozen=True, slots=True)
class _Keys:
    jwks: Mapping[str, Any] | None
    jku: tuple[str, ...]
    field: str  # where to point an error about these keys


def _build(
    where: _Where,
    entry: Mapping[str, Any],
    iss: str,
    default_algorithms: frozenset[str],
    keys: _Keys,
    default_fhir_servers: tuple[str, ...] | None = None,
    profile: ClientProfile | None = None,
) -> TrustedClient:
    if "algorithms" in entry:
        algorithms = _algorithms(where, entry["algorithms"])
    else:
        algorithms = default_algorithms
    tenants = _tenants(where, entry["tenants"]) if "tenants" in entry else None
    if "fhir_servers" in entry:
        fhir_servers: tuple[str, ...] | None = _fhir_servers(where, entry["fhir_servers"])
    else:
        fhir_servers = default_fhir_servers
    pinned_only = keys.jwks is not None and not keys.jku
    if pinned_only and not KeySet.lenient(keys.jwks).supports_any(algorithms):
        listed = ", ".join(sorted(algorithms))
        raise where.error(keys.field, f"no key can verify the client's algorithms ({listed})")
    return TrustedClient(
        iss=iss,
        jwks=keys.jwks,
        jku=keys.jku,
        algorithms=algorithms,
        tenants=tenants,
        fhir_servers=fhir_servers,
        profile=profile,
    )


def _profile(
    where: _Where, entry: Mapping[str, Any], preset: Preset | None = None
) -> ClientProfile | None:
    """The client's profile: its ``profile:`` block on top of its preset's, if either exists."""
    base = preset.profile if preset is not None else None
    if "profile" not in entry and base is None:
        return None
    location = f"clients[{where.index}].profile"
    return parse_profile(where.file, location, entry.get("profile"), base)


def _plain_client(where: _Where, entry: Mapping[str, Any]) -> TrustedClient:
    source = _source(where, entry)
    if source is None:
        raise where.error("", "needs exactly one key source: jwks, jwks_file or jku")
    if "iss" not in entry:
        raise where.error("iss", "is required")
    iss = _iss(where, entry["iss"])
    jwks, jku = _key_source(where, entry, source)
    keys = _Keys(jwks, jku, source)
    return _build(where, entry, iss, DEFAULT_ALGORITHMS, keys, profile=_profile(where, entry))


def _preset_client(where: _Where, entry: Mapping[str, Any]) -> TrustedClient:
    """A preset, with any of its fields overridden; a key source given replaces the preset's."""
    name = entry["preset"]
    preset = _preset(where, name)
    source = _source(where, entry)
    iss = _iss(where, entry["iss"]) if "iss" in entry else preset.iss
    if source is None:
        keys = _Keys(preset.jwks, preset.jku, "preset")
    else:
        keys = _Keys(*_key_source(where, entry, source), field=source)
    from_iss = (iss,) if preset.fhir_servers_from_iss else None
    profile = _profile(where, entry, preset)
    client = _build(where, entry, iss, frozenset(preset.algorithms), keys, from_iss, profile)
    _warn_for_preset(str(name), preset, entry)
    return client


def _client(where: _Where, raw: object) -> TrustedClient:
    entry = _check_fields(where, raw)
    if "preset" in entry:
        return _preset_client(where, entry)
    return _plain_client(where, entry)


def _check_unique_iss(path: Path, clients: tuple[TrustedClient, ...]) -> None:
    first_index: dict[str, int] = {}
    for index, client in enumerate(clients):
        if client.iss in first_index:
            reason = (
                f"duplicates the iss of clients[{first_index[client.iss]}] "
                f"({client.iss!r}); each iss must name one client"
            )
            raise TrustConfigError(path, f"clients[{index}].iss", reason)
        first_index[client.iss] = index


def load_trust_config(path: Path, *, require_clients: bool = True) -> TrustConfig:
    """Read and validate the trust file; any problem raises ``TrustConfigError``.

    ``require_clients`` False (authentication off, where only ``default_profile`` is used): a
    file without ``clients`` is accepted; clients it does list are still checked.
    """
    path = Path(path)
    document = _top_level(path, _parse_text(path, _read_text(path)))
    entries = _client_entries(path, document, required=require_clients)
    clients = tuple(_client(_Where(path, index), entry) for index, entry in enumerate(entries))
    _check_unique_iss(path, clients)
    default_profile = (
        parse_profile(path, "default_profile", document["default_profile"])
        if "default_profile" in document
        else None
    )
    _log.info(
        "trust.loaded",
        file=str(path),
        clients=[client.iss for client in clients],
        profiles={c.iss: c.profile.describe() for c in clients if c.profile is not None},
        default_profile=default_profile.describe() if default_profile else "default",
    )
    for client in clients:
        if client.fhir_servers is None:
            _log.info(
                "trust.fhir_servers_unlisted",
                iss=client.iss,
                detail="no fhir_servers: this client's fhirServer must resolve to public addresses",
            )
    return TrustConfig(clients=clients, source=path, default_profile=default_profile)
