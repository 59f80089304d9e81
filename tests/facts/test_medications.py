"""Medications: classified by ingredient through every route the contract allows."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.facts import classify

from .builders import (
    RXNORM,
    draft,
    fired,
    fired_topics,
    make_facts,
    med_request,
    medication,
    mg,
    model,
    rx,
    shipped,
    silent,
    with_settings,
)


def classes_of(resource: dict[str, Any], medications: dict[str, Any] | None = None) -> set[str]:
    found, _, _ = classify(
        model(resource),
        shipped().medications,
        {k: model(v) for k, v in (medications or {}).items()},
    )
    return set(found)


# --- (1) ingredient codes, (2) product codes ------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("42316", {"tacrolimus"}),
        ("3008", {"cyclosporine"}),
        ("68149", {"mycophenolate"}),
        ("7145", {"mycophenolate"}),
        ("6581", {"mg_al_antacid"}),
        ("612", {"mg_al_antacid"}),
        ("6582", {"oral_mg_supplement"}),
        ("6585", {"iv_mg"}),
        ("8591", {"k_supplement"}),
        ("1897", {"ca_supplement"}),
        ("7646", {"ppi"}),
        ("4603", {"loop_diuretic"}),
        ("5487", {"thiazide"}),
        ("1596450", {"other_mg_wasting"}),
        ("35302", {"mtor_inhibitor"}),
        ("3407", {"digoxin"}),
        ("10582", {"levothyroxine"}),
        ("2551", {"fluoroquinolone"}),
    ],
)
def test_ingredient_code(code: str, expected: set[str]) -> None:
    resource = med_request(code)
    assert classes_of(resource) == expected
    _, matched_by, _ = classify(model(resource), shipped().medications, {})
    assert matched_by == (f"RxNorm ingredient {code}",)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("198377", {"tacrolimus"}),  # sandbox Tacrolimus 1 MG Oral Capsule
        ("108513", {"tacrolimus"}),  # [Prograf]
        ("1664463", {"tacrolimus"}),  # Synthea
        ("197553", {"cyclosporine"}),
        ("199058", {"mycophenolate"}),
        ("237872", {"mg_al_antacid"}),  # Al hydroxide / Mg hydroxide chewable
        ("212978", {"mg_al_antacid"}),  # [Gaviscon]
        ("205234", {"mg_al_antacid", "ca_supplement"}),  # Ca carbonate / Mg hydroxide
        ("198741", {"oral_mg_supplement"}),
        ("198936", {"oral_mg_supplement"}),  # Mg lactate: name-only ingredient
        ("198116", {"k_supplement"}),
        ("198527", {"ca_supplement"}),
        ("198051", {"ppi"}),
        ("200801", {"loop_diuretic"}),
        ("197604", {"digoxin"}),
    ],
)
def test_product_code(code: str, expected: set[str]) -> None:
    resource = med_request(code)  # no display, no text: the code alone must classify it
    assert classes_of(resource) == expected
    _, matched_by, _ = classify(model(resource), shipped().medications, {})
    assert matched_by == (f"RxNorm product {code}",)


def test_component_codes_listed_as_not_ordered_are_not_in_the_table() -> None:
    # 564557, 315328, 336883, 252430 are components in the sandbox list, not orderables.
    for code in ("564557", "315328", "336883", "252430"):
        assert classes_of(med_request(code)) == set(), code


def test_rxnorm_oid_system_is_accepted() -> None:
    resource = med_request("198377", code_system="urn:oid:2.16.840.1.113883.6.88")
    assert classes_of(resource) == {"tacrolimus"}


def test_code_under_another_system_is_not_an_rxnorm_code() -> None:
    # NDC 0469-0607 happens to contain digits; only the text may classify it.
    assert classes_of(med_request("42316", code_system="http://hl7.org/fhir/sid/ndc")) == set()
    resource = med_request(
        "0469-0607-73", "Prograf 1 mg capsule", code_system="http://hl7.org/fhir/sid/ndc"
    )
    assert classes_of(resource) == {"tacrolimus"}


# --- (3) contained and referenced Medications ----------------------------------------------


def test_contained_medication_by_product_code() -> None:
    resource = med_request(
        medication_reference="#med1", contained=[medication("med1", code="198377")]
    )
    found, matched_by, display = classify(model(resource), shipped().medications, {})
    assert found == {"tacrolimus"}
    assert matched_by == ("RxNorm product 198377 (Medication.code)",)
    assert display == "unnamed medication"


def test_contained_medication_by_ingredient() -> None:
    resource = med_request(
        medication_reference="#med1",
        contained=[
            medication(
                "med1",
                text="Gelusil chewable",
                ingredients=[("612", "aluminum hydroxide"), ("6581", "magnesium hydroxide")],
            )
        ],
    )
    found, _, display = classify(model(resource), shipped().medications, {})
    assert found == {"mg_al_antacid"}
    assert display == "Gelusil chewable"


def test_contained_medication_by_ingredient_text_only() -> None:
    resource = med_request(
        medication_reference="#m",
        contained=[medication("m", text="House compound", ingredients=[(None, "Tacrolimus")])],
    )
    assert classes_of(resource) == {"tacrolimus"}


def test_contained_reference_to_a_missing_id_is_not_guessed() -> None:
    resource = med_request(
        medication_reference="#other", contained=[medication("med1", code="198377")]
    )
    assert classes_of(resource) == set()


@pytest.mark.parametrize(
    "reference",
    ["Medication/abc", "https://fhir.example.org/r4/Medication/abc", "Medication/abc/_history/2"],
)
def test_referenced_medication_from_the_medications_map(reference: str) -> None:
    resource = med_request(medication_reference=reference)
    meds = {"Medication/abc": medication("abc", code="237872", text="Maalox chewable")}
    found, _, display = classify(
        model(resource), shipped().medications, {k: model(v) for k, v in meds.items()}
    )
    assert found == {"mg_al_antacid"}
    assert display == "Maalox chewable"


def test_unresolved_reference_is_unclassified() -> None:
    assert classes_of(med_request(medication_reference="Medication/missing")) == set()


def test_reference_display_is_matched_by_name() -> None:
    resource = med_request()
    resource["medicationReference"] = {"reference": "Medication/x", "display": "Envarsus XR 1 mg"}
    found, _, display = classify(model(resource), shipped().medications, {})
    assert found == {"tacrolimus"}
    assert display == "Envarsus XR 1 mg"


# --- (4) names and brands -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Prograf 1 mg capsule", {"tacrolimus"}),
        ("PROGRAF 0.5MG CAP", {"tacrolimus"}),
        ("tacrolimus 1 mg oral capsule", {"tacrolimus"}),
        ("Advagraf 3 mg prolonged-release", {"tacrolimus"}),
        ("Neoral 100 mg", {"cyclosporine"}),
        ("ciclosporin 25 mg", {"cyclosporine"}),
        ("CellCept 500 mg", {"mycophenolate"}),
        ("Myfortic 360 mg", {"mycophenolate"}),
        ("Milk of Magnesia", {"mg_al_antacid"}),
        ("milk of magnesia 400 mg/5 mL suspension", {"mg_al_antacid"}),
        ("Maalox Advanced", {"mg_al_antacid"}),
        ("Gaviscon Extra Strength", {"mg_al_antacid"}),
        ("aluminium hydroxide gel", {"mg_al_antacid"}),
        ("magaldrate suspension", {"mg_al_antacid"}),
        (
            "Aluminum Hydroxide 200 MG / Magnesium Hydroxide 200 MG Chewable Tablet",
            {"mg_al_antacid"},
        ),
        ("Mag-Ox 400", {"oral_mg_supplement"}),
        ("Slow-Mag 64 mg", {"oral_mg_supplement"}),
        ("magnesium citrate 100 mg", {"oral_mg_supplement"}),
        ("magnesium glycinate", {"oral_mg_supplement"}),
        ("Magnesium sulfate 2 g/50 mL IV", {"iv_mg"}),
        ("K-Dur 20 mEq", {"k_supplement"}),
        ("Klor-Con M20", {"k_supplement"}),
        ("Tums 500 mg", {"ca_supplement"}),
        ("Os-Cal 500", {"ca_supplement"}),
        ("Nexium 40 mg", {"ppi"}),
        ("Lasix 40 mg", {"loop_diuretic"}),
        ("Lanoxin 125 mcg", {"digoxin"}),
        ("Rapamune 1 mg", {"mtor_inhibitor"}),
        ("amphotericin B liposomal", {"other_mg_wasting"}),
        ("ferrous sulfate 325 mg", {"iron"}),
        ("Tacrolimus 1 MG Oral Capsule [Prograf]", {"tacrolimus"}),
        # Hyphen-joined combination names (EHR generic naming) match each ingredient.
        ("aluminum hydroxide-magnesium hydroxide 200-200 mg/5 mL suspension", {"mg_al_antacid"}),
        ("calcium carbonate-magnesium hydroxide chewable", {"ca_supplement", "mg_al_antacid"}),
        ("aluminum-magnesium hydroxide-simethicone 200-200-20 mg/5 mL", {"mg_al_antacid"}),
    ],
)
def test_name_match_in_text(text: str, expected: set[str]) -> None:
    assert classes_of(med_request(text=text)) == expected


def test_name_match_in_coding_display_without_a_known_code() -> None:
    resource = med_request("999999", "Prograf 5 mg capsule")
    found, matched_by, display = classify(model(resource), shipped().medications, {})
    assert found == {"tacrolimus"}
    assert matched_by == ("name 'Prograf'",)
    assert display == "Prograf 5 mg capsule"


@pytest.mark.parametrize(
    "text",
    [
        "Prografix 1 mg",  # not Prograf
        "Magnesiumoxide",  # one word: not "magnesium oxide"
        "Neoralgin tablet",
        "antiTums",
        "Lasixamide",
        "magnesium",  # the element alone is not a product
        "Magnesium 250 mg tablet",  # salt unknown: not guessed
        "digoxine immune fab",  # "digoxine" is a different word
    ],
)
def test_name_match_needs_word_boundaries(text: str) -> None:
    assert classes_of(med_request(text=text)) == set()


def test_hyphen_is_a_word_boundary() -> None:
    # Documented behaviour: names match on \w boundaries, so a hyphen separates words. This is
    # what makes "aluminum hydroxide-magnesium hydroxide" an antacid; the price is that an
    # (unrealistic) "magnesium oxide-free" text would also read as magnesium oxide.
    assert classes_of(med_request(text="magnesium oxide-free formula")) == {"oral_mg_supplement"}
    assert classes_of(med_request(text="Prograf-XL")) == {"tacrolimus"}


def test_display_prefers_the_text() -> None:
    resource = med_request("198377", "Tacrolimus 1 MG Oral Capsule", text="Prograf 1 mg capsule")
    _, _, display = classify(model(resource), shipped().medications, {})
    assert display == "Prograf 1 mg capsule"


def test_sandbox_draft_without_medication_is_unclassified() -> None:
    resource = {"resourceType": "MedicationRequest", "id": "sb", "status": "draft"}
    found, matched_by, display = classify(model(resource), shipped().medications, {})
    assert found == set() and matched_by == () and display == "unnamed medication"


# --- statuses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status",
    ["stopped", "completed", "entered-in-error", "cancelled", "on-hold", "draft", "unknown"],
)
def test_inactive_orders_are_ignored(status: str) -> None:
    facts = make_facts(meds=[rx("tacrolimus", status=status)])
    assert facts.active == ()
    assert facts.cni_start is None


def test_on_hold_counts_when_configured() -> None:
    content = with_settings(active_medication_statuses=["active", "on-hold"])
    facts = make_facts(meds=[rx("tacrolimus", status="on-hold")], content=content)
    assert [m.classes for m in facts.active] == [frozenset({"tacrolimus"})]
    # On a CNI now, so an Mg of 0.68 mmol/L is below the transplant target.
    finding = fired(
        "hypomagnesemia",
        labs=[mg(0.68, "mmol/L")],
        meds=[rx("tacrolimus", status="on-hold")],
        content=content,
    )
    assert finding.indicator == "info"
    silent("hypomagnesemia", labs=[mg(0.68, "mmol/L")], meds=[rx("tacrolimus", status="on-hold")])


def test_active_medication_statement_counts() -> None:
    statement = med_request(
        "198377",
        "Tacrolimus 1 MG Oral Capsule",
        resource_type="MedicationStatement",
        authored_days_ago=30,
    )
    facts = make_facts(statements=[statement])
    assert [m.resource_type for m in facts.active] == ["MedicationStatement"]
    assert facts.active[0].classes == {"tacrolimus"}
    assert facts.cni_start is not None and facts.cni_start.date().isoformat() == "2026-10-21"


@pytest.mark.parametrize("status", ["stopped", "completed", "entered-in-error"])
def test_ignored_statuses_in_draft_orders(status: str) -> None:
    facts = make_facts("order-sign", drafts=[draft("antacid", status=status)])
    assert facts.drafts == ()


def test_duplicate_order_id_is_counted_once() -> None:
    order = rx("tacrolimus", req_id="tac")
    facts = make_facts(meds=[order, dict(order)])
    assert len(facts.active) == 1


def test_cni_start_is_the_earliest_authored_on_of_active_cni_orders() -> None:
    facts = make_facts(
        meds=[
            rx("tacrolimus", authored_days_ago=10),
            rx("cyclosporine", authored_days_ago=40),
            rx("tacrolimus", authored_days_ago=300, status="stopped"),
            rx("omeprazole", authored_days_ago=500),
        ]
    )
    assert facts.cni_start is not None
    assert facts.cni_start.date().isoformat() == "2026-10-11"


# --- order-select vs order-sign -------------------------------------------------------------


def test_order_select_marks_only_selections_as_being_ordered() -> None:
    antacid = draft("antacid", req_id="a1")
    tac = draft("tacrolimus", req_id="t1")
    facts = make_facts("order-select", drafts=[antacid, tac], selections=["MedicationRequest/a1"])
    assert [(m.resource_id, m.being_ordered) for m in facts.drafts] == [("a1", True), ("t1", False)]
    assert {m.resource_id for m in facts.present} == {"a1", "t1"}


def test_order_select_accepts_a_bare_id_in_selections() -> None:
    facts = make_facts("order-select", drafts=[draft("antacid", req_id="a1")], selections=["a1"])
    assert facts.being_ordered[0].resource_id == "a1"


def test_order_sign_treats_every_draft_as_being_ordered() -> None:
    facts = make_facts(
        "order-sign", drafts=[draft("antacid", req_id="a1"), draft("tacrolimus", req_id="t1")]
    )
    assert [m.being_ordered for m in facts.drafts] == [True, True]


def test_sandbox_draft_with_no_medication_and_no_intent_yields_no_card() -> None:
    sandbox = {"resourceType": "MedicationRequest", "id": "sb-1", "status": "draft"}
    for hook in ("order-select", "order-sign"):
        kw: dict[str, Any] = {"drafts": [sandbox]}
        if hook == "order-select":
            kw["selections"] = ["MedicationRequest/sb-1"]
        assert fired_topics(hook, **kw) == {}
    assert RXNORM.startswith("http://www.nlm.nih.gov")
