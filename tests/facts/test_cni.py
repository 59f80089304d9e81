"""The calcineurin-inhibitor course (contract 4.8): a new start, its start date from the
earliest evidence, an unknown start, the monitoring window, and a serum Mg among the orders."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from cds_service.content import Content
from cds_service.facts import CniCourse, Facts

from .builders import (
    FIXED_NOW,
    MG,
    MG_BLOOD,
    MG_MOLAR,
    K,
    csa_level,
    draft,
    fired,
    lab_order,
    make_facts,
    mg,
    rx,
    shipped,
    silent,
    statement,
    tac_level,
    with_windows,
)


def windows(content: Content | None = None) -> tuple[int, int, int]:
    """(monitoring_gap_days, stable_cni_days, stable_monitoring_gap_days) of the content."""
    w = (content or shipped()).settings.windows
    return (w.monitoring_gap_days, w.stable_cni_days, w.stable_monitoring_gap_days)


def course(facts: Facts) -> CniCourse:
    assert facts.cni is not None
    return facts.cni


def day(when: datetime | None) -> str | None:
    return when.date().isoformat() if when is not None else None


# --- a new start ------------------------------------------------------------------------------


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_a_cni_ordered_with_no_earlier_evidence_is_a_new_start_now(hook: str) -> None:
    # The draft's authoredOn (here 100 days ago) does not date a start: the request does.
    facts = make_facts(hook, drafts=[draft("tacrolimus", authored_days_ago=100)])
    cni = course(facts)
    assert (cni.classes, cni.active, cni.being_started, cni.start) == (
        {"tacrolimus"},
        False,
        True,
        FIXED_NOW,
    )
    assert facts.cni_being_started is True
    assert cni.evidence[-1].endswith("a new start")


@pytest.mark.parametrize("status", ["active", "completed", "stopped"])
def test_an_order_of_the_same_ingredient_on_file_is_no_new_start(status: str) -> None:
    facts = make_facts(
        "order-sign",
        meds=[rx("tacrolimus", status=status, authored_days_ago=300)],
        drafts=[draft("tacrolimus")],
    )
    cni = course(facts)
    assert (cni.being_started, day(cni.start)) == (False, "2026-01-24")
    assert cni.active is (status == "active")


@pytest.mark.parametrize("status", ["cancelled", "entered-in-error", "draft"])
def test_an_order_that_never_ran_is_no_evidence(status: str) -> None:
    facts = make_facts(
        "order-sign",
        meds=[rx("tacrolimus", status=status, authored_days_ago=300)],
        drafts=[draft("tacrolimus")],
    )
    assert (course(facts).being_started, course(facts).start) == (True, FIXED_NOW)


def test_a_completed_statement_of_the_same_ingredient_is_no_new_start() -> None:
    old = statement("42316", "tacrolimus", status="completed", started_days_ago=500)
    facts = make_facts("order-sign", statements=[old], drafts=[draft("tacrolimus")])
    assert (course(facts).being_started, day(course(facts).start)) == (False, "2025-07-08")


def test_an_order_of_the_other_cni_does_not_stop_a_new_start() -> None:
    # Switching from cyclosporine to tacrolimus: tacrolimus is new.
    facts = make_facts(
        "order-sign",
        meds=[rx("cyclosporine", authored_days_ago=50)],
        drafts=[draft("tacrolimus")],
    )
    cni = course(facts)
    assert (cni.classes, cni.being_started, cni.active) == (
        {"tacrolimus", "cyclosporine"},
        True,
        True,
    )
    # The new CNI dates the course: 4.8, "a new start at the moment of the request".
    assert cni.start == FIXED_NOW


def test_an_mg_drawn_on_the_cni_being_replaced_does_not_answer_the_first_week_check() -> None:
    kw: dict[str, Any] = {
        "meds": [rx("cyclosporine", authored_days_ago=50)],
        "drafts": [draft("tacrolimus")],
        "labs": [mg(2.0, days_ago=20)],
    }
    finding = fired("mg-monitoring-gap", "order-select", **kw)
    assert (finding.indicator, finding.values["reason"], finding.values["cni_start"]) == (
        "warning",
        "new_start",
        "2026-11-20",
    )
    # Continuing the same CNI is no new start: the Mg 20 days ago is within the window.
    kw["drafts"] = [draft("cyclosporine")]
    assert silent("mg-monitoring-gap", "order-select", **kw) == (
        "on a CNI, last Mg 2026-10-31 is within 42 days"
    )


def test_a_renewal_with_a_prior_prescription_is_no_new_start() -> None:
    renewal = draft("tacrolimus")
    renewal["priorPrescription"] = {"reference": "MedicationRequest/tac-2025"}
    facts = make_facts("order-sign", drafts=[renewal])
    cni = course(facts)
    # Nothing dates the course: an unknown start, the routine tier, never "being started".
    assert (cni.being_started, cni.start) == (False, None)
    assert "the order being placed renews a prior prescription" in cni.evidence


@pytest.mark.parametrize(
    ("level", "effective", "new_start"),
    [
        (tac_level, "2026-11-06T11:59:00Z", False),  # older than 14 days: taken before
        (tac_level, "2026-11-06T12:00:00Z", True),  # exactly 14 days: not older
        (tac_level, "2026-09-01T08:00:00Z", False),
        (csa_level, "2026-09-01T08:00:00Z", True),  # a cyclosporine level says nothing of tac
    ],
)
def test_an_old_level_of_the_same_cni_is_no_new_start(
    level: Any, effective: str, new_start: bool
) -> None:
    facts = make_facts(
        "order-sign", labs=[level(8, effective=effective)], drafts=[draft("tacrolimus")]
    )
    assert course(facts).being_started is new_start


def test_a_new_start_is_dated_by_a_recent_level_before_the_request() -> None:
    # A tacrolimus level 5 days ago (not older than 14 days: still a new start) is the earliest
    # evidence of the course: the start is then, not the moment of the request.
    facts = make_facts("order-sign", labs=[tac_level(8, days_ago=5)], drafts=[draft("tacrolimus")])
    cni = course(facts)
    assert (cni.being_started, day(cni.start)) == (True, "2026-11-15")
    assert cni.started_within(FIXED_NOW, 14) is True


def test_an_mg_drawn_since_the_recent_level_answers_the_first_week_check() -> None:
    level = tac_level(8, days_ago=5)
    labs = [level, mg(2.0, days_ago=3)]
    why = silent("mg-monitoring-gap", "order-select", drafts=[draft("tacrolimus")], labs=labs)
    assert why == "on a CNI, last Mg 2026-11-17 is within 42 days"
    # An Mg from before the first evidence of the course does not.
    labs = [level, mg(2.0, days_ago=7)]
    finding = fired("mg-monitoring-gap", "order-select", drafts=[draft("tacrolimus")], labs=labs)
    assert (finding.indicator, finding.values["reason"], finding.values["cni_start"]) == (
        "warning",
        "new_start",
        "2026-11-15",
    )


def test_a_new_start_is_not_a_patient_on_a_cni_at_patient_view() -> None:
    facts = make_facts("patient-view")
    assert (facts.cni, facts.on_cni, facts.cni_being_started) == (None, False, False)


def test_levels_alone_do_not_make_a_course() -> None:
    facts = make_facts(labs=[tac_level(8, days_ago=30)])
    assert facts.cni is None


# --- the start: earliest evidence -------------------------------------------------------------


@pytest.mark.parametrize(
    ("meds", "statements", "labs", "start"),
    [
        ([rx("tacrolimus", authored_days_ago=10)], [], [], "2026-11-10"),
        (
            [rx("tacrolimus", authored_days_ago=10), rx("tacrolimus", authored_days_ago=40)],
            [],
            [],
            "2026-10-11",
        ),
        (
            [rx("tacrolimus", authored_days_ago=10)],
            [],
            [tac_level(7, days_ago=12), tac_level(9, days_ago=60)],
            "2026-09-21",
        ),
        (
            [rx("tacrolimus", authored_days_ago=10)],
            [statement("198377", "Tacrolimus 1 MG Oral Capsule", started_days_ago=400)],
            [],
            "2025-10-16",
        ),
        (
            [rx("tacrolimus", authored_days_ago=100, status="stopped")],
            [statement("198377", "Tacrolimus 1 MG Oral Capsule", started_days_ago=30)],
            [],
            "2026-08-12",
        ),
        ([rx("tacrolimus", authored_days_ago=None)], [], [tac_level(7, days_ago=90)], "2026-08-22"),
    ],
    ids=[
        "one-order",
        "earliest-order",
        "earliest-level",
        "statement-effective-start",
        "stopped-order",
        "level-without-authored-on",
    ],
)
def test_the_start_is_the_earliest_evidence(
    meds: list[dict[str, Any]],
    statements: list[dict[str, Any]],
    labs: list[dict[str, Any]],
    start: str,
) -> None:
    facts = make_facts(meds=meds, statements=statements, labs=labs)
    cni = course(facts)
    assert (day(cni.start), cni.being_started, cni.active) == (start, False, True)


def test_a_statement_effective_date_time_dates_the_course() -> None:
    stmt = statement("42316", "tacrolimus", started_days_ago=None)
    stmt["effectiveDateTime"] = "2026-06-01"
    assert day(course(make_facts(statements=[stmt])).start) == "2026-06-01"


def test_nothing_dates_the_course_an_unknown_start() -> None:
    facts = make_facts(meds=[rx("tacrolimus", authored_days_ago=None)])
    cni = course(facts)
    assert (cni.start, cni.being_started, cni.active) == (None, False, True)
    assert cni.started_within(FIXED_NOW, 14) is False
    assert cni.monitoring_window(FIXED_NOW, 42, 365, 90) == 42


# --- the monitoring window --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "window"),
    [
        (None, 42),  # unknown start: the first-year window
        (FIXED_NOW, 42),
        (FIXED_NOW - timedelta(days=364), 42),
        (FIXED_NOW - timedelta(days=365) + timedelta(minutes=1), 42),
        (FIXED_NOW - timedelta(days=365), 90),  # a year on the CNI: the stable window
        (FIXED_NOW - timedelta(days=900), 90),
    ],
)
def test_the_monitoring_window(start: datetime | None, window: int) -> None:
    cni = CniCourse(frozenset({"tacrolimus"}), True, start, False, ())
    assert cni.monitoring_window(FIXED_NOW, 42, 365, 90) == window


@pytest.mark.parametrize(
    ("authored_days_ago", "window"), [(None, 42), (10, 42), (364, 42), (366, 90), (800, 90)]
)
def test_the_window_follows_the_course(authored_days_ago: int | None, window: int) -> None:
    facts = make_facts(meds=[rx("tacrolimus", authored_days_ago=authored_days_ago)])
    assert windows() == (42, 365, 90)
    assert course(facts).monitoring_window(FIXED_NOW, *windows()) == window


def test_the_windows_are_settings() -> None:
    content = with_windows(
        monitoring_gap_days=28, stable_cni_days=180, stable_monitoring_gap_days=60
    )
    facts = make_facts(meds=[rx("tacrolimus", authored_days_ago=200)], content=content)
    assert course(facts).monitoring_window(FIXED_NOW, *windows(content)) == 60
    facts = make_facts(meds=[rx("tacrolimus", authored_days_ago=100)], content=content)
    assert course(facts).monitoring_window(FIXED_NOW, *windows(content)) == 28


def test_started_within() -> None:
    cni = CniCourse(frozenset({"tacrolimus"}), True, FIXED_NOW - timedelta(days=14), False, ())
    assert cni.started_within(FIXED_NOW, 14) is True
    assert cni.started_within(FIXED_NOW + timedelta(minutes=1), 14) is False


def test_new_start_days_are_a_setting() -> None:
    content = with_windows(new_cni_days=30)
    facts = make_facts(
        "order-sign",
        labs=[tac_level(8, days_ago=20)],
        drafts=[draft("tacrolimus")],
        content=content,
    )
    assert course(facts).being_started is True


# --- a serum Mg among the orders --------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "ordered"),
    [
        (lab_order(MG), True),
        (lab_order(MG_MOLAR), True),
        (lab_order(MG, status="active"), True),
        (lab_order(MG, status="completed"), False),
        (lab_order(MG, status="revoked"), False),
        (lab_order(MG, status="entered-in-error"), False),
        (lab_order(MG, do_not_perform=True), False),
        (lab_order(MG, do_not_perform=False), True),
        (lab_order(MG_BLOOD), False),  # whole-blood (ionized) Mg is not serum Mg
        (lab_order(K), False),
        (lab_order(MG, code_system="http://lab.example.org/orders"), False),
    ],
)
@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_a_serum_mg_order_among_the_drafts(order: dict[str, Any], ordered: bool, hook: str) -> None:
    facts = make_facts(hook, drafts=[draft("tacrolimus"), order])
    assert facts.mg_check_ordered is ordered
    # A lab order is never a medication.
    assert [m.resource_type for m in facts.drafts] == ["MedicationRequest"]


def test_the_lab_orders_name_their_analytes() -> None:
    facts = make_facts("order-sign", drafts=[lab_order(MG), lab_order(K), lab_order("2160-0")])
    assert facts.lab_orders == {"magnesium", "potassium", "creatinine"}


def test_a_serum_mg_order_is_not_a_result() -> None:
    facts = make_facts("order-sign", drafts=[lab_order(MG)], labs=[mg(1.9, days_ago=50)])
    assert [r.day for r in facts.results("magnesium")] == ["2026-10-01"]
    assert facts.current == {}
