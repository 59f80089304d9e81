"""The text report, URL handling and the in-memory database: no server needed."""

from __future__ import annotations

import pytest

from cds_service.store import Store, format_report_text
from cds_service.store._engine import normalise_url

from .support import accepted, card, items


def test_text_report_is_a_readable_table() -> None:
    report = {
        "topics": {
            "antacid-tacrolimus": {
                "shown": 3,
                "silent": 0,
                "accepted": 0,
                "overridden": 2,
                "override_reasons": {"not-relevant": 1},
            },
            "hypomagnesemia": {
                "shown": 4,
                "silent": 6,
                "accepted": 1,
                "overridden": 2,
                "override_reasons": {"treated": 1, "not-relevant": 1},
            },
        },
        "suggestions": {
            "Magnesium sulfate 2 g IV": {"shown": 2, "accepted": 1, "acceptance_rate": 0.5},
        },
    }
    assert format_report_text(report).splitlines() == [
        "topic               shown  silent  accepted  overridden  accepted %  override reasons",
        "------------------  -----  ------  --------  ----------  ----------  "
        "-------------------------",
        "antacid-tacrolimus      3       0         0           2        0.0%  not-relevant=1",
        "hypomagnesemia          4       6         1           2       25.0%  "
        "treated=1, not-relevant=1",
        "",
        "suggestion                shown  accepted  accepted %",
        "------------------------  -----  --------  ----------",
        "Magnesium sulfate 2 g IV      2         1       50.0%",
    ]


def test_text_report_when_nothing_is_recorded() -> None:
    assert format_report_text({"topics": {}, "suggestions": {}}) == "No cards or feedback recorded."


def test_an_unknown_card_with_no_shown_cards_has_no_percentage() -> None:
    text = format_report_text(
        {"topics": {"x": {"shown": 0, "accepted": 1, "overridden": 0, "override_reasons": {}}}}
    )
    assert text.splitlines()[2].split() == ["x", "0", "0", "1", "0", "-"]


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///var/x.sqlite3", "sqlite"),
    ],
)
def test_database_urls_are_normalised(url: str, driver: str) -> None:
    assert normalise_url(url).drivername == driver


def test_other_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        normalise_url("mysql://u@h/db")


def test_an_in_memory_database_works_for_tests_and_tools() -> None:
    with Store.open("sqlite://") as store:
        shown = card()
        store.record_cards([shown])
        assert store.store_feedback("mg-patient-view", items(accepted(shown.card_uuid))).stored == 1
        assert store.report()["topics"]["hypomagnesemia"]["accepted"] == 1
        assert store.ping()
