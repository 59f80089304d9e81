"""Feedback bodies: what a CDS client may send, and the 400 that names the field otherwise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from cds_service.feedback import MAX_ITEMS, FeedbackItem, parse_feedback
from cds_service.protocol.errors import BadRequest

CARD = "8b7c5e10-3a4f-4e2b-9c1d-2f6a7b8c9d0e"
SUGGESTION = "0f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f"
WHEN = "2026-11-20T12:00:00Z"


def item(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"card": CARD, "outcome": "accepted", "outcomeTimestamp": WHEN}
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}


def rejected(payload: Any) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        parse_feedback(payload)
    assert caught.value.status == 400
    return caught.value


def expression(payload: Any) -> str | None:
    return rejected(payload).issues[0].expression


def test_accepted_with_suggestions() -> None:
    [parsed] = parse_feedback(
        {"feedback": [item(acceptedSuggestions=[{"id": SUGGESTION}, {"id": SUGGESTION}])]}
    )
    assert parsed.card == CARD
    assert parsed.outcome == "accepted"
    assert parsed.accepted_suggestion_ids == (SUGGESTION,)
    assert parsed.override_reason is None
    assert parsed.outcome_timestamp == datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_overridden_with_reason_and_comment() -> None:
    reason = {"system": "https://example.org/reasons", "code": "not-relevant", "display": "No"}
    [parsed] = parse_feedback(
        {
            "feedback": [
                item(
                    outcome="overridden",
                    overrideReason={"reason": reason, "userComment": "discussed with team"},
                )
            ]
        }
    )
    assert parsed.override_reason is not None
    assert parsed.override_reason.reason is not None
    assert parsed.override_reason.reason.code == "not-relevant"
    assert parsed.override_reason.user_comment == "discussed with team"
    assert parsed.accepted_suggestions == ()


def test_overridden_without_a_reason_and_a_comment_only_are_accepted() -> None:
    parsed = parse_feedback(
        {
            "feedback": [
                item(outcome="overridden"),
                item(outcome="overridden", overrideReason={"userComment": "later"}),
            ]
        }
    )
    assert [p.outcome for p in parsed] == ["overridden", "overridden"]


def test_uuids_are_lower_cased_and_times_normalised_to_utc() -> None:
    [parsed] = parse_feedback(
        {"feedback": [item(card=CARD.upper(), outcomeTimestamp="2026-11-20T14:00:00+02:00")]}
    )
    assert parsed.card == CARD
    assert parsed.outcome_timestamp == datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert parsed.outcome_timestamp.tzinfo is UTC


def test_a_time_without_offset_is_read_as_utc() -> None:
    [parsed] = parse_feedback({"feedback": [item(outcomeTimestamp="2026-11-20T12:00:00.250")]})
    assert parsed.outcome_timestamp == datetime(2026, 11, 20, 12, 0, 0, 250_000, tzinfo=UTC)


def test_unknown_fields_and_extensions_are_ignored() -> None:
    [parsed] = parse_feedback(
        {"feedback": [item(extension={"x": 1}, somethingNew=True)], "extension": {}}
    )
    assert parsed.card == CARD


def test_an_empty_accepted_suggestions_array_is_tolerated_when_overridden() -> None:
    [parsed] = parse_feedback({"feedback": [item(outcome="overridden", acceptedSuggestions=[])]})
    assert parsed.accepted_suggestions == ()


def test_items_are_frozen() -> None:
    [parsed] = parse_feedback({"feedback": [item()]})
    assert isinstance(parsed, FeedbackItem)
    with pytest.raises(ValidationError):
        parsed.outcome = "overridden"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ([item()], "feedback"),
        ({}, "feedback"),
        ({"feedback": []}, "feedback"),
        ({"feedback": {"card": CARD}}, "feedback"),
        ({"feedback": [item()] * (MAX_ITEMS + 1)}, "feedback"),
        ({"feedback": ["not an object"]}, "feedback.0"),
        ({"feedback": [item(card=None)]}, "feedback.0.card"),
        ({"feedback": [item(card=12345)]}, "feedback.0.card"),
        ({"feedback": [item(card="not-a-uuid")]}, "feedback.0.card"),
        ({"feedback": [item(), item(outcome="dismissed")]}, "feedback.1.outcome"),
        ({"feedback": [item(outcome=None)]}, "feedback.0.outcome"),
        ({"feedback": [item(outcomeTimestamp=None)]}, "feedback.0.outcomeTimestamp"),
        ({"feedback": [item(outcomeTimestamp="yesterday")]}, "feedback.0.outcomeTimestamp"),
        ({"feedback": [item(outcomeTimestamp="2026-11-20")]}, "feedback.0.outcomeTimestamp"),
        ({"feedback": [item(outcomeTimestamp=1_795_000_000)]}, "feedback.0.outcomeTimestamp"),
        (
            {"feedback": [item(outcomeTimestamp="2026-13-40T99:00:00Z")]},
            "feedback.0.outcomeTimestamp",
        ),
        (
            {"feedback": [item(outcome="overridden", acceptedSuggestions=[{"id": SUGGESTION}])]},
            "feedback.0.acceptedSuggestions",
        ),
        (
            {"feedback": [item(overrideReason={"userComment": "no"})]},
            "feedback.0.overrideReason",
        ),
        (
            {"feedback": [item(acceptedSuggestions={"id": SUGGESTION})]},
            "feedback.0.acceptedSuggestions",
        ),
        (
            {"feedback": [item(acceptedSuggestions=[{"id": "x"}])]},
            "feedback.0.acceptedSuggestions.0.id",
        ),
        ({"feedback": [item(acceptedSuggestions=[{}])]}, "feedback.0.acceptedSuggestions.0.id"),
        (
            {"feedback": [item(outcome="overridden", overrideReason={"reason": {"code": "x"}})]},
            "feedback.0.overrideReason.reason.system",
        ),
        (
            {"feedback": [item(outcome="overridden", overrideReason={"userComment": 7})]},
            "feedback.0.overrideReason.userComment",
        ),
        (
            {"feedback": [item(outcome="overridden", overrideReason="not-relevant")]},
            "feedback.0.overrideReason",
        ),
    ],
)
def test_invalid_feedback_names_the_field(payload: Any, where: str) -> None:
    assert expression(payload) == where


def test_the_diagnostics_say_what_is_wrong() -> None:
    error = rejected({"feedback": [item(outcome="dismissed")]})
    assert error.issues[0].diagnostics.startswith("feedback.0.outcome: ")
    assert "accepted" in error.issues[0].diagnostics
    outcome = error.outcome()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["feedback.0.outcome"]


def test_snake_case_names_are_not_accepted_from_the_wire() -> None:
    body = {"feedback": [{"card": CARD, "outcome": "accepted", "outcome_timestamp": WHEN}]}
    assert expression(body) == "feedback.0.outcomeTimestamp"


def test_one_hundred_items_are_accepted() -> None:
    assert len(parse_feedback({"feedback": [item()] * MAX_ITEMS})) == MAX_ITEMS


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9))]
        ),
    )
)
def test_any_iso_date_time_round_trips_as_the_same_instant(moment: datetime) -> None:
    [parsed] = parse_feedback({"feedback": [item(outcomeTimestamp=moment.isoformat())]})
    assert parsed.outcome_timestamp == moment
    assert parsed.outcome_timestamp.utcoffset() == timedelta(0)


@given(
    st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.integers(), max_size=3))
)
def test_junk_is_always_a_400_never_a_crash(junk: Any) -> None:
    for payload in (
        junk,
        {"feedback": junk},
        {"feedback": [junk]},
        {"feedback": [item(card=junk)]},
    ):
        with pytest.raises(BadRequest):
            parse_feedback(payload)
