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


def classified(
    resource: dict[str, Any], medications: dict[str, Any] | None = None
) -> tuple[frozenset[str], frozenset[str], tuple[str, ...], str, str | None]:
    """(ingredients, classes, matched_by, display, route) of one product."""
    return classify(
        model(resource),
        shipped().medications,
        {k: model(v) for k, v in (medications or {}).items()},
    )


def classes_of(resource: dict[str, Any], medications: dict[str, Any] | None = None) -> set[str]:
    return set(classified(resource, medications)[1])


# --- (1) ingredient codes, (2) product codes ------------------------------------------------


@pytest.mark.parametrize(
    ("code", "ingredient", "expected"),
    [
        ("42316", "tacrolimus", {"tacrolimus"}),
        ("3008", "cyclosporine", {"cyclosporine"}),
        ("68149", "mycophenolate mofetil", {"mycophenolate"}),
        ("7145", "mycophenolic acid", {"mycophenolate"}),
        ("6581", "magnesium hydroxide", {"mg_al_antacid"}),
        ("612", "aluminum hydroxide", {"mg_al_antacid"}),
        ("6582", "magnesium oxide", {"oral_mg_supplement"}),
        ("6585", "magnesium sulfate", {"iv_mg"}),
        ("8591", "potassium chloride", {"k_supplement"}),
        ("1897", "calcium carbonate", {"ca_supplement"}),
        ("7646", "omeprazole", {"ppi"}),
        ("4603", "furosemide", {"loop_diuretic"}),
        ("5487", "hydrochlorothiazide", {"thiazide"}),
        ("1596450", "gentamicin", {"other_mg_wasting"}),
        ("40048", "carboplatin", {"other_mg_wasting"}),
        ("5657", "ifosfamide", {"other_mg_wasting"}),
        ("77655", "zoledronic acid", {"other_mg_wasting"}),
        ("35302", "sirolimus", {"mtor_inhibitor"}),
        ("3407", "digoxin", {"digoxin"}),
        ("10582", "levothyroxine", {"levothyroxine"}),
        ("2551", "ciprofloxacin", {"fluoroquinolone"}),
    ],
)
def test_ingredient_code(code: str, ingredient: str, expected: set[str]) -> None:
    resource = med_request(code)
    ingredients, classes, matched_by, _, route = classified(resource)
    assert set(classes) == expected
    assert ingredients == {ingredient}
    assert matched_by == (f"RxNorm ingredient {code}",)
    assert route is None  # a bare ingredient code says nothing about the route


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
    ingredients, classes, matched_by, display, _ = classified(resource)
    assert set(classes) == expected
    # One entry per ingredient the product table names.
    assert matched_by == (f"RxNorm product {code}",) * len(ingredients)
    assert display == "unnamed medication"


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
    ingredients, found, matched_by, display, _ = classified(resource)
    assert (ingredients, found) == ({"tacrolimus"}, {"tacrolimus"})
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
    ingredients, found, matched_by, display, _ = classified(resource)
    assert ingredients == {"aluminum hydroxide", "magnesium hydroxide"}
    assert found == {"mg_al_antacid"}
    assert matched_by == (
        "RxNorm ingredient 612 (Medication ingredient)",
        "RxNorm ingredient 6581 (Medication ingredient)",
    )
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
    ingredients, found, _, display, _ = classified(resource, meds)
    assert ingredients == {"aluminum hydroxide", "magnesium hydroxide"}
    assert found == {"mg_al_antacid"}
    assert display == "Maalox chewable"


def test_unresolved_reference_is_unclassified() -> None:
    assert classes_of(med_request(medication_reference="Medication/missing")) == set()


def test_reference_display_is_matched_by_name() -> None:
    resource = med_request()
    resource["medicationReference"] = {"reference": "Medication/x", "display": "Envarsus XR 1 mg"}
    ingredients, found, matched_by, display, _ = classified(resource)
    assert (ingredients, found) == ({"tacrolimus"}, {"tacrolimus"})
    assert matched_by == ("brand 'Envarsus'",)
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
    ingredients, found, matched_by, display, route = classified(resource)
    assert (ingredients, found) == ({"tacrolimus"}, {"tacrolimus"})
    assert matched_by == ("brand 'Prograf'",)
    assert display == "Prograf 5 mg capsule"
    assert route == "oral"  # "capsule"


@pytest.mark.parametrize(
    "text",
    [
        "Prografix 1 mg",  # not Prograf
        "Magnesiumoxide",  # one word: not "magnesium oxide"
        "Neoralgin tablet",
        "antiTums",
        "Lasixamide",
        "Magnesia tablets",  # "magnesia" is not "magnesium" (milk of magnesia is a brand)
        "digoxine immune fab",  # "digoxine" is a different word
    ],
)
def test_name_match_needs_word_boundaries(text: str) -> None:
    assert classes_of(med_request(text=text)) == set()


@pytest.mark.parametrize(
    ("text", "route"),
    [
        ("Magnesium 250 mg tablet", "oral"),
        ("Magnesium 400 mg tablet", "oral"),
        ("MAGNESIUM 500 MG CAPSULE", "oral"),
        ("magnesium", None),  # no route given: most orders without one are oral
    ],
)
def test_an_unnamed_magnesium_salt_is_an_oral_supplement(text: str, route: str | None) -> None:
    # 4.6: "Magnesium 400 mg tablet" names no salt; it is an oral Mg supplement, never ignored.
    ingredients, classes, matched_by, _, found_route = classified(med_request(text=text))
    assert (ingredients, classes) == (frozenset(), {"oral_mg_supplement"})
    assert matched_by[0].lower() == "name 'magnesium'"
    assert found_route == route


def test_hyphen_is_a_word_boundary() -> None:
    # Documented behaviour: names match on \w boundaries, so a hyphen separates words. This is
    # what makes "aluminum hydroxide-magnesium hydroxide" an antacid; the price is that an
    # (unrealistic) "magnesium oxide-free" text would also read as magnesium oxide.
    assert classes_of(med_request(text="magnesium oxide-free formula")) == {"oral_mg_supplement"}
    assert classes_of(med_request(text="Prograf-XL")) == {"tacrolimus"}


def test_display_prefers_the_text() -> None:
    resource = med_request("198377", "Tacrolimus 1 MG Oral Capsule", text="Prograf 1 mg capsule")
    assert classified(resource)[3] == "Prograf 1 mg capsule"


def test_sandbox_draft_without_medication_is_unclassified() -> None:
    resource = {"resourceType": "MedicationRequest", "id": "sb", "status": "draft"}
    assert classified(resource) == (frozenset(), frozenset(), (), "unnamed medication", None)


# --- statuses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "history"),
    [
        ("stopped", True),
        ("completed", True),
        ("entered-in-error", False),
        ("cancelled", False),
        ("on-hold", False),
        ("draft", False),
        ("unknown", False),
    ],
)
def test_inactive_orders_are_ignored(status: str, history: bool) -> None:
    # Only active orders make a patient "on" a drug; completed and stopped ones are kept as
    # history (evidence of an earlier course, 4.8), the rest are dropped.
    facts = make_facts(meds=[rx("tacrolimus", status=status, req_id="t")])
    assert facts.active == ()
    assert facts.cni is None
    assert not facts.on_cni
    assert [(m.resource_id, m.origin, m.status) for m in facts.history] == (
        [("t", "history", status)] if history else []
    )


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
    assert facts.active[0].origin == "active"
    assert facts.cni is not None and facts.cni.start is not None
    assert facts.cni.start.date().isoformat() == "2026-10-21"


@pytest.mark.parametrize("status", ["stopped", "completed", "entered-in-error"])
def test_ignored_statuses_in_draft_orders(status: str) -> None:
    facts = make_facts("order-sign", drafts=[draft("antacid", status=status)])
    assert facts.drafts == ()


def test_duplicate_order_id_is_counted_once() -> None:
    order = rx("tacrolimus", req_id="tac")
    facts = make_facts(meds=[order, dict(order)])
    assert len(facts.active) == 1


def test_cni_start_is_the_earliest_evidence_of_either_cni() -> None:
    # 4.8: the start is the earliest evidence, a stopped order of the same ingredient included
    # (v1 read only active orders); other drugs are no evidence.
    facts = make_facts(
        meds=[
            rx("tacrolimus", authored_days_ago=10),
            rx("cyclosporine", authored_days_ago=40),
            rx("tacrolimus", authored_days_ago=300, status="stopped"),
            rx("omeprazole", authored_days_ago=500),
        ]
    )
    assert facts.cni is not None and facts.cni.start is not None
    assert facts.cni.start.date().isoformat() == "2026-01-24"
    assert facts.cni.classes == {"tacrolimus", "cyclosporine"}
    assert facts.cni.being_started is False


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
