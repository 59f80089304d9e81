"""CDS Hooks 2.0.1 feedback bodies: strict models and the validation behind the 400 answer."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from .protocol.errors import BadRequest

MAX_ITEMS = 100
_MAX_CODE = 256
_MAX_TEXT = 1024
_MAX_COMMENT = 10_000

Outcome = Literal["accepted", "overridden"]

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# A date alone is not a moment: the snooze and idempotency key need a time of day.
_HAS_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _canonical_uuid(value: str) -> str:
    if not _UUID.fullmatch(value):
        raise ValueError("must be a UUID (8-4-4-4-12 hexadecimal digits)")
    # Lower case so that a client echoing an upper-case uuid still matches the audit row.
    return value.lower()


UuidText = Annotated[StrictStr, Field(max_length=64)]


class _Model(BaseModel):
    # Unknown fields (and ``extension``) are ignored, as the spec asks of every request part.
    # Python code may use field names; the wire is read by alias only (see parse_feedback).
    model_config = ConfigDict(
        frozen=True, extra="ignore", validate_by_alias=True, validate_by_name=True
    )


class Coding(_Model):
    system: StrictStr = Field(min_length=1, max_length=_MAX_TEXT)
    code: StrictStr = Field(min_length=1, max_length=_MAX_CODE)
    display: StrictStr | None = Field(default=None, max_length=_MAX_TEXT)


class OverrideReason(_Model):
    reason: Coding | None = None
    user_comment: StrictStr | None = Field(
        default=None, alias="userComment", max_length=_MAX_COMMENT
    )


class AcceptedSuggestion(_Model):
    id: UuidText

    @field_validator("id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        return _canonical_uuid(value)


class FeedbackItem(_Model):
    """One feedback item; field order matters: the cross-field checks read ``outcome``."""

    card: UuidText
    outcome: Outcome
    accepted_suggestions: tuple[AcceptedSuggestion, ...] = Field(
        default=(), alias="acceptedSuggestions", validate_default=True
    )
    override_reason: OverrideReason | None = Field(
        default=None, alias="overrideReason", validate_default=True
    )
    outcome_timestamp: datetime = Field(alias="outcomeTimestamp")

    @field_validator("card")
    @classmethod
    def _card_uuid(cls, value: str) -> str:
        return _canonical_uuid(value)

    @field_validator("accepted_suggestions", mode="before")
    @classmethod
    def _suggestions_are_a_list(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise ValueError("must be an array")
        return value

    @field_validator("accepted_suggestions")
    @classmethod
    def _suggestions_only_when_accepted(
        cls, value: tuple[AcceptedSuggestion, ...], info: ValidationInfo
    ) -> tuple[AcceptedSuggestion, ...]:
        # An empty array says nothing, so it is tolerated with either outcome.
        if value and info.data.get("outcome") == "overridden":
            raise ValueError("only allowed when outcome is 'accepted'")
        return value

    @field_validator("override_reason")
    @classmethod
    def _reason_only_when_overridden(
        cls, value: OverrideReason | None, info: ValidationInfo
    ) -> OverrideReason | None:
        if value is not None and info.data.get("outcome") == "accepted":
            raise ValueError("only allowed when outcome is 'overridden'")
        return value

    @field_validator("outcome_timestamp", mode="before")
    @classmethod
    def _timestamp_is_iso_text(cls, value: Any) -> datetime:
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 date-time string")
        if not _HAS_TIME.match(value):
            raise ValueError("must be an ISO 8601 date-time with a time of day")
        try:
            parsed = datetime.fromisoformat(value[:-1] + "Z" if value.endswith("z") else value)
        except ValueError:
            raise ValueError("must be an ISO 8601 date-time string") from None
        # CDS Hooks says UTC; a time without an offset is read as UTC, not as server-local time.
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    @property
    def accepted_suggestion_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.id for s in self.accepted_suggestions))


class FeedbackBody(_Model):
    feedback: tuple[FeedbackItem, ...] = Field(min_length=1, max_length=MAX_ITEMS)

    @field_validator("feedback", mode="before")
    @classmethod
    def _feedback_is_a_list(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise ValueError("must be an array of feedback items")
        return value


def _location(error: ErrorDetails) -> str:
    # Aliases are what the client sent, so the location names the JSON field, not ours.
    return ".".join(str(part) for part in error["loc"]) or "feedback"


def _message(error: ErrorDetails) -> str:
    message = error["msg"].removeprefix("Value error, ")
    return f"{_location(error)}: {message}"


def parse_feedback(payload: Any) -> list[FeedbackItem]:
    """Validate a feedback body; the first problem becomes a 400 naming its field."""
    if not isinstance(payload, dict):
        raise BadRequest("the feedback body must be a JSON object", "feedback")
    try:
        body = FeedbackBody.model_validate(payload, by_alias=True, by_name=False)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        raise BadRequest(_message(first), _location(first)) from None
    return list(body.feedback)


__all__ = [
    "MAX_ITEMS",
    "AcceptedSuggestion",
    "Coding",
    "FeedbackBody",
    "FeedbackItem",
    "Outcome",
    "OverrideReason",
    "parse_feedback",
]
