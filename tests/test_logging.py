"""JSON logging, keyed patient hashes, and redaction of tokens and patient ids."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cds_service._logging import (
    REDACTED,
    configure_logging,
    get_logger,
    patient_hash,
    redact_sensitive,
)

TOKEN = jwt.encode(
    {"iss": "https://ehr.example.org", "jti": "abc", "sub": "user"},
    "test-secret-only-for-shaping-a-token",
    algorithm="HS256",
    headers={"kid": "k1"},
)
PATIENT_ID = "pat-8f2e1c"


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    configure_logging("INFO")
    capsys.readouterr()

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]

    yield lines
    configure_logging("INFO")


# --- patient_hash -------------------------------------------------------------------------


def test_patient_hash_is_stable_keyed_and_short() -> None:
    first = patient_hash("site-key", PATIENT_ID)
    assert first == patient_hash("site-key", PATIENT_ID)
    assert len(first) == 16 and int(first, 16) >= 0
    assert first != patient_hash("other-key", PATIENT_ID)
    assert first != patient_hash("site-key", PATIENT_ID + "x")
    expected = hmac.new(b"site-key", PATIENT_ID.encode(), hashlib.sha256).hexdigest()[:16]
    assert first == expected


def test_empty_key_is_never_an_unkeyed_hash() -> None:
    hashed = patient_hash("", PATIENT_ID)
    assert hashed == patient_hash("", PATIENT_ID), "stable within the process"
    assert hashed != hashlib.sha256(PATIENT_ID.encode()).hexdigest()[:16]
    assert hashed != hmac.new(b"", PATIENT_ID.encode(), hashlib.sha256).hexdigest()[:16]
    assert PATIENT_ID not in hashed


@given(st.text(min_size=1), st.text(min_size=1))
def test_patient_hash_never_contains_the_id(key: str, patient_id: str) -> None:
    hashed = patient_hash(key, patient_id)
    assert len(hashed) == 16
    assert set(hashed) <= set("0123456789abcdef")


# --- redaction processor ------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "authorization",
        "Authorization",
        "access_token",
        "fhirAuthorization",
        "patientId",
        "patient_id",
        "patient-id",
        "jwt",
        "bearer_token",
        "id_token",
    ],
)
def test_sensitive_keys_are_redacted(key: str) -> None:
    event = redact_sensitive(None, "info", {"event": "x", key: "some value"})
    assert event[key] == REDACTED


def test_ordinary_fields_are_kept() -> None:
    event: dict[str, Any] = {
        "event": "hook.done",
        "logger": "cds_service.protocol.validation_rules",
        "patient": "0123abcd4567ef89",
        "patient_hash": "0123abcd4567ef89",
        "iss": "https://sandbox.cds-hooks.org",
        "version": "2026.10.18",
        "count": 3,
        "ok": True,
        "nothing": None,
    }
    assert redact_sensitive(None, "info", dict(event)) == event


def test_jwt_values_are_redacted_wherever_they_are() -> None:
    event = redact_sensitive(
        None,
        "info",
        {
            "event": f"got header Bearer {TOKEN} from client",
            "header": TOKEN,
            "nested": {"fhirAuthorization": {"access_token": "opaque"}, "note": [TOKEN, 1]},
            "error": ValueError(f"bad token {TOKEN}"),
        },
    )
    rendered = json.dumps(event)
    assert TOKEN not in rendered
    assert event["event"] == f"got header Bearer {REDACTED} from client"
    assert event["header"] == REDACTED
    assert event["nested"] == {"fhirAuthorization": REDACTED, "note": [REDACTED, 1]}
    assert event["error"] == f"bad token {REDACTED}"


def test_token_shaped_values_are_redacted_even_if_they_do_not_decode() -> None:
    shaped = "A" * 20 + "." + "B" * 40 + "." + "C" * 30
    assert redact_sensitive(None, "info", {"v": shaped})["v"] == REDACTED


@given(st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=4), st.text())
def test_any_jwt_in_text_is_redacted(payload: dict[str, str], prefix: str) -> None:
    token = jwt.encode(payload, "k" * 32, algorithm="HS256")
    event = redact_sensitive(None, "info", {"event": f"{prefix} {token} end"})
    assert token not in event["event"]


# --- the configured pipeline ----------------------------------------------------------------


def test_structlog_output_is_redacted_json(json_logs: Any) -> None:
    log = get_logger("tests.logging")
    log.info(
        "hook.received",
        patientId=PATIENT_ID,
        fhirAuthorization={"access_token": "opaque-access-token"},
        authorization=f"Bearer {TOKEN}",
        detail=f"raw {TOKEN}",
        patient=patient_hash("k", PATIENT_ID),
    )
    (line,) = json_logs()
    text = json.dumps(line)
    assert TOKEN not in text and PATIENT_ID not in text and "opaque-access-token" not in text
    assert line["event"] == "hook.received"
    assert line["level"] == "info"
    assert line["logger"] == "tests.logging"
    assert line["timestamp"].endswith("Z") and "T" in line["timestamp"]
    assert line["patient"] == patient_hash("k", PATIENT_ID)
    assert line["patientId"] == line["authorization"] == REDACTED


def test_stdlib_and_uvicorn_records_use_the_same_json(json_logs: Any) -> None:
    logging.getLogger("uvicorn.error").warning("client sent %s", TOKEN)
    (line,) = json_logs()
    assert line["logger"] == "uvicorn.error"
    assert line["level"] == "warning"
    assert line["event"] == f"client sent {REDACTED}"
    assert "timestamp" in line


def test_exceptions_are_rendered_and_redacted(json_logs: Any) -> None:
    try:
        raise RuntimeError(f"failed with {TOKEN}")
    except RuntimeError:
        get_logger("tests.logging").exception("request.failed")
    (line,) = json_logs()
    assert "RuntimeError" in line["exception"]
    assert TOKEN not in line["exception"]


def test_configuring_twice_keeps_one_handler_and_applies_the_new_level(json_logs: Any) -> None:
    configure_logging("WARNING")
    configure_logging("warning")
    log = get_logger("tests.logging")
    log.info("quiet")
    log.warning("loud")
    assert [line["event"] for line in json_logs()] == ["loud"]


def test_unknown_level_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("CHATTY")
