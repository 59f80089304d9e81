"""Structured JSON logging for the whole process, with redaction as a last line of defence."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

REDACTED = "[REDACTED]"

# Only a per-process secret: a hash that outlives a restart needs CDS_PATIENT_HASH_KEY.
_PROCESS_HASH_KEY = secrets.token_bytes(32)
_PATIENT_HASH_CHARS = 16

# Compared after lower-casing and dropping "_" and "-", so patientId, patient_id and
# patient-id are one name. Exact names, not substrings: "patient_hash" must stay visible.
_SENSITIVE_NAMES = frozenset({"patientid", "patienthashkey", "bearer"})
_SENSITIVE_SUFFIXES = ("token", "authorization", "jwt", "secret", "password", "apikey")

_B64URL = r"[A-Za-z0-9_-]"
# Candidate JWS anywhere in a string; confirmed by decoding the header segment.
_JWT_CANDIDATE = re.compile(rf"(?<!{_B64URL}){_B64URL}{{2,}}\.{_B64URL}+\.{_B64URL}*")
# A whole value of three long base64url segments is treated as a token even if its
# header does not decode: truncated or re-encoded tokens still should not be logged.
_JWT_SHAPED = re.compile(rf"{_B64URL}{{16,}}\.{_B64URL}{{16,}}\.{_B64URL}{{16,}}")

# Libraries that put request URLs (a FHIR search URL carries the patient id) or SQL parameters
# into their log arguments, at any level (urllib3 logs every request line at DEBUG).
_ARGUMENT_FREE_LOGGERS = ("urllib3", "requests", "httpx", "httpcore", "sqlalchemy")
# One printf-style field of a logging call's message template: %s, %r, %d, %(name)s, %-8.3f, ...
_PRINTF_FIELD = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[diouxXeEfFgGcrsa]")

_HANDLER_MARK = "_cds_service_json_handler"
# Chatty at INFO: Alembic on every start (plugin set-up, migration context; the store logs one
# line instead, store.opened), SQLAlchemy with every statement. Shown at DEBUG; otherwise at
# WARNING and above, and never below the level asked for.
_CHATTY_LOGGERS = ("alembic", "sqlalchemy")
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error")
_ACCESS_LOGGER = "uvicorn.access"
# The demo FHIR endpoint's paths name resources (Patient/<id>): cut after the resource type.
_DEMO_FHIR_PREFIX = "/demo/fhir/"


def _is_sensitive_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    name = key.lower().replace("_", "").replace("-", "")
    return name in _SENSITIVE_NAMES or name.endswith(_SENSITIVE_SUFFIXES)


def _decodes_to_json_object(segment: str) -> bool:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return isinstance(json.loads(raw), dict)
    except (binascii.Error, ValueError):
        return False


def _scrub_match(match: re.Match[str]) -> str:
    token = match.group(0)
    return REDACTED if _decodes_to_json_object(token.split(".", 1)[0]) else token


def _scrub_text(text: str) -> str:
    if _JWT_SHAPED.fullmatch(text):
        return REDACTED
    if "." not in text:
        return text
    return _JWT_CANDIDATE.sub(_scrub_match, text)


def _scrub(value: object) -> object:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, Mapping):
        return {
            key: REDACTED if _is_sensitive_key(key) else _scrub(item) for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(item) for item in value]
    # Anything else is rendered with str() later; scrub that text now.
    return _scrub_text(str(value))


def redact_sensitive(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Structlog processor: blank credential/patient-id fields and anything shaped like a JWT."""
    for key in list(event_dict):
        if _is_sensitive_key(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def _is_argument_free(name: str) -> bool:
    return any(name == lib or name.startswith(lib + ".") for lib in _ARGUMENT_FREE_LOGGERS)


def drop_library_arguments(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Foreign-record processor: a URL-handling library's line keeps its message template (what
    happened) but not its arguments (to which URL), and of an exception only its type."""
    record = event_dict.get("_record")
    if not isinstance(record, logging.LogRecord) or not _is_argument_free(record.name):
        return event_dict
    event_dict["event"] = _PRINTF_FIELD.sub(REDACTED, str(record.msg))
    exc_info = event_dict.pop("exc_info", None)
    if isinstance(exc_info, tuple) and exc_info and isinstance(exc_info[0], type):
        event_dict["exception"] = exc_info[0].__name__
    return event_dict


def _shared_processors() -> list[structlog.types.Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time, so captured or replaced streams work."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _json_handler() -> logging.Handler:
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[drop_library_arguments, *_shared_processors(), redact_sensitive],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    return handler


def _parse_level(level: str) -> int:
    value = logging.getLevelName(level.strip().upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r}")
    return value


def access_path(path_with_query: str) -> str:
    """What an access-log line shows of a request target: the path, never the query string
    (FHIR searches carry the patient id there), and under the demo FHIR endpoint only the
    resource type (``/demo/fhir/Patient/[REDACTED]``)."""
    path = path_with_query.split("?", 1)[0]
    if path.startswith(_DEMO_FHIR_PREFIX):
        resource_type, _, rest = path.removeprefix(_DEMO_FHIR_PREFIX).partition("/")
        path = _DEMO_FHIR_PREFIX + resource_type + (f"/{REDACTED}" if rest else "")
    return path


class _AccessLineFilter(logging.Filter):
    """uvicorn's access line is ``'%s - "%s %s HTTP/%s" %d'`` with the target third."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], access_path(args[2]), *args[3:])
        return True


def _configure_access_log(enabled: bool) -> None:
    # uvicorn decides per connection whether to log access lines by asking whether its access
    # logger has a handler, the root's included: propagation alone would switch them on.
    access = logging.getLogger(_ACCESS_LOGGER)
    access.handlers.clear()
    for existing in [f for f in access.filters if isinstance(f, _AccessLineFilter)]:
        access.removeFilter(existing)
    access.propagate = enabled
    if enabled:
        access.addFilter(_AccessLineFilter())


def configure_logging(level: str = "INFO", *, access_log: bool = False) -> None:
    """JSON lines on stderr for structlog and stdlib (uvicorn) alike; calling again replaces.

    uvicorn's per-request access lines are off unless ``access_log`` (``CDS_ACCESS_LOG``), and
    then carry no query string (``access_path``).
    """
    numeric_level = _parse_level(level)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(handler)
    root.addHandler(_json_handler())
    root.setLevel(numeric_level)
    chatty_level = (
        numeric_level if numeric_level <= logging.DEBUG else max(numeric_level, logging.WARNING)
    )
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(chatty_level)
    # uvicorn installs its own plain-text handlers; route its records through ours instead.
    for name in _UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    _configure_access_log(access_log)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            redact_sensitive,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A named logger; configures the JSON defaults first so nothing ever logs unredacted."""
    if not structlog.is_configured():
        configure_logging()
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


_empty_key_warned = False


def _warn_empty_key_once() -> None:
    global _empty_key_warned
    if not _empty_key_warned:
        _empty_key_warned = True
        get_logger(__name__).warning(
            "logging.patient_hash_key_missing",
            detail="CDS_PATIENT_HASH_KEY is empty: patient hashes use a per-process key "
            "and cannot be correlated across restarts or workers",
        )


def patient_hash(key: str, patient_id: str) -> str:
    """Keyed HMAC-SHA256 of a patient id (16 hex chars); never an unkeyed hash of the id."""
    if key:
        secret = key.encode()
    else:
        _warn_empty_key_once()
        secret = _PROCESS_HASH_KEY
    digest = hmac.new(secret, patient_id.encode(), hashlib.sha256).hexdigest()
    return digest[:_PATIENT_HASH_CHARS]


__all__ = [
    "REDACTED",
    "access_path",
    "configure_logging",
    "drop_library_arguments",
    "get_logger",
    "patient_hash",
    "redact_sensitive",
]
