"""What a product really is (contract 4.6): its route (SNOMED route codes and dose-form words),
orders not to give a drug, magnesium laxatives and bowel preparations, brands, and unnamed
magnesium salts, in the shapes EHRs send (text-only drugs, SCD/SBD codes, contained and
referenced Medications, MedicationStatements with ``dosage[].route`` and ``effectivePeriod``,
MedicationRequests with ``dosageInstruction[].route``)."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.content._schema import MEDICATION_CLASSES
from cds_service.facts import Facts, MedicationFact, classify

from .builders import (
    RXNORM,
    draft,
    make_facts,
    med_request,
    medication,
    model,
    rx,
    shipped,
    statement,
    with_route,
)


def on_file(resource: dict[str, Any], **kw: Any) -> MedicationFact:
    """The one medication fact an active order or statement gives."""
    key = "statements" if resource["resourceType"] == "MedicationStatement" else "meds"
    facts = make_facts(**{key: [resource]}, **kw)
    assert len(facts.active) == 1, facts.active
    return facts.active[0]


def route_of(resource: dict[str, Any]) -> str | None:
    return classify(model(resource), shipped().medications, {})[4]


# --- route codes ------------------------------------------------------------------------------

NON_SYSTEMIC_ROUTES = ["topical", "cutaneous", "ophthalmic", "otic", "nasal", "vaginal"]


@pytest.mark.parametrize("route_name", NON_SYSTEMIC_ROUTES)
@pytest.mark.parametrize("kind", ["MedicationRequest", "MedicationStatement"])
def test_a_non_systemic_route_code_counts_for_no_class(route_name: str, kind: str) -> None:
    # The product text alone would read as a systemic tacrolimus capsule: the coded route wins.
    if kind == "MedicationRequest":
        resource = with_route(rx("tacrolimus", req_id="t"), route_name)
    else:
        resource = statement("42316", "tacrolimus", route_name=route_name, stmt_id="t")
    med = on_file(resource)
    assert med.route == "non-systemic"
    assert med.ingredients == {"tacrolimus"}
    assert med.classes == frozenset()
    assert med.excluded is not None and med.excluded.startswith("not systemic (")
    assert med.matched_by[-1] == "would count as tacrolimus"
    facts = make_facts(**{"meds" if kind == "MedicationRequest" else "statements": [resource]})
    assert (facts.cni, facts.on_cni, facts.on_tacrolimus) == (None, False, False)


@pytest.mark.parametrize(
    ("route_name", "expected"),
    [
        ("intravenous", "parenteral"),
        ("intramuscular", "parenteral"),
        ("subcutaneous", "parenteral"),
        ("oral", "oral"),
    ],
)
def test_systemic_route_codes(route_name: str, expected: str) -> None:
    med = on_file(with_route(rx("tacrolimus"), route_name))
    assert (med.route, med.classes, med.excluded) == (expected, {"tacrolimus"}, None)


@pytest.mark.parametrize("route_name", ["topical", "ophthalmic", "intravenous", "oral"])
def test_a_route_given_as_text_only_is_read_from_its_words(route_name: str) -> None:
    expected = {"topical": "non-systemic", "ophthalmic": "non-systemic"}.get(
        route_name, "parenteral" if route_name == "intravenous" else "oral"
    )
    resource = with_route(med_request(text="cyclosporine 100 mg"), route_name, coded=False)
    assert route_of(resource) == expected


def test_a_route_code_in_another_system_is_not_read_as_snomed() -> None:
    resource = rx("tacrolimus")
    resource["dosageInstruction"] = [
        {"route": {"coding": [{"system": "http://example.org/routes", "code": "6064005"}]}}
    ]
    # The code is not SNOMED; the product's own words ("Oral Capsule") decide.
    assert on_file(resource).route == "oral"


# --- dose-form words --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ingredient"),
    [
        ("Tacrolimus 0.1 % Topical Ointment", "tacrolimus"),
        ("tacrolimus 0.001 MG/MG Topical Ointment [Protopic]", "tacrolimus"),
        ("Protopic 0.03% ointment", "tacrolimus"),
        ("Protopic", "tacrolimus"),  # the brand is a topical product
        ("cyclosporine 0.5 MG/ML Ophthalmic Emulsion [Restasis]", "cyclosporine"),
        ("Restasis", "cyclosporine"),
        ("Restasis 0.05% eye drops", "cyclosporine"),
        ("Cyclosporine 0.09 % Ophthalmic Solution [Cequa]", "cyclosporine"),
        ("ciclosporin eye drops", "cyclosporine"),
        ("gentamicin sulfate 0.1 % Topical Cream", "gentamicin"),
        ("Tobramycin 0.3 % Ophthalmic Solution", "tobramycin"),
        ("ciprofloxacin 0.2 % Otic Solution", "ciprofloxacin"),
        ("ciprofloxacin ear drops", "ciprofloxacin"),
        ("Mupirocin / gentamicin lotion", "gentamicin"),
        ("amphotericin B 3 % cream", "amphotericin b"),
        ("metronidazole / gentamicin vaginal gel", "gentamicin"),
        ("tobramycin nasal spray", "tobramycin"),
        ("magnesium chloride topical gel", "magnesium chloride"),
    ],
)
def test_a_non_systemic_dose_form_counts_for_no_class(text: str, ingredient: str) -> None:
    med = on_file(med_request(text=text))
    assert med.route == "non-systemic"
    assert ingredient in med.ingredients
    assert med.classes == frozenset()


@pytest.mark.parametrize(
    ("text", "classes"),
    [
        # "Oral" wins over a non-systemic word: an oral gel or an oral suspension of a gel.
        ("Aluminum Hydroxide Gel 320 MG/5ML Oral Suspension", {"mg_al_antacid"}),
        ("magnesium hydroxide oral gel", {"mg_al_antacid"}),
        # A hydroxide gel is an oral antacid even when the text does not say "oral".
        ("aluminium hydroxide gel", {"mg_al_antacid"}),
        ("Amphojel antacid", {"mg_al_antacid"}),
        ("Tacrolimus 1 MG Oral Capsule", {"tacrolimus"}),
        ("Cyclosporine 100 MG/ML Oral Solution [Neoral]", {"cyclosporine"}),
        ("tacrolimus 1 mg by mouth", {"tacrolimus"}),
    ],
)
def test_oral_wins_over_a_non_systemic_word(text: str, classes: set[str]) -> None:
    med = on_file(med_request(text=text))
    assert (med.route, med.classes) == ("oral", classes)


@pytest.mark.parametrize(
    ("text", "route", "classes"),
    [
        ("Tacrolimus 5 MG/ML Injectable Solution", "parenteral", {"tacrolimus"}),
        ("Prograf 5 MG/ML Injection", "parenteral", {"tacrolimus"}),
        ("cyclosporine 50 MG/ML IV infusion", "parenteral", {"cyclosporine"}),
        ("Magnesium Sulfate 2 GM in 50 ML IVPB", "parenteral", {"iv_mg"}),
        ("Tacrolimus 1 MG Oral Capsule", "oral", {"tacrolimus"}),
        ("Tacrolimus 1 MG Extended Release Tablet", "oral", {"tacrolimus"}),
        ("tacrolimus", None, {"tacrolimus"}),  # no route said: counted (most orders are oral)
    ],
)
def test_systemic_dose_forms(text: str, route: str | None, classes: set[str]) -> None:
    med = on_file(med_request(text=text))
    assert (med.route, med.classes, med.excluded) == (route, classes, None)
    assert med.oral is (route != "parenteral")


@pytest.mark.parametrize(
    "text",
    [
        "tobramycin 300 MG in 5 ML Inhalation Solution [TOBI]",
        "Tobi Podhaler 28 mg inhalation powder",
        "amikacin liposome inhalation suspension [Arikayce]",
        "tobramycin 300 mg/5 mL nebulizer solution",
    ],
)
def test_inhaled_aminoglycosides_are_still_systemic(text: str) -> None:
    med = on_file(with_route(med_request(text=text), "inhalation"))
    assert med.classes == {"other_mg_wasting"}
    assert med.excluded is None


def test_a_contained_medication_form_gives_the_route() -> None:
    resource = med_request(
        medication_reference="#eye",
        contained=[
            medication(
                "eye",
                code="378794",
                text="Restasis",
                ingredients=[("3008", "cyclosporine")],
                form="Ophthalmic Emulsion",
            )
        ],
    )
    med = on_file(resource)
    assert (med.route, med.ingredients, med.classes) == (
        "non-systemic",
        {"cyclosporine"},
        frozenset(),
    )


def test_a_referenced_medication_form_gives_the_route() -> None:
    resource = med_request(medication_reference="Medication/tac-oint")
    meds = {
        "Medication/tac-oint": medication(
            "tac-oint", ingredients=[("42316", "tacrolimus")], form="Topical Ointment"
        )
    }
    med = on_file(resource, medications=meds)
    assert (med.route, med.classes) == ("non-systemic", frozenset())


def test_non_systemic_drafts_make_no_order_relevant() -> None:
    ointment = draft("tacrolimus", req_id="oint")
    ointment["medicationCodeableConcept"] = {"text": "Protopic 0.1% ointment"}
    facts = make_facts("order-sign", drafts=[ointment])
    assert [(m.resource_id, m.classes, m.route) for m in facts.drafts] == [
        ("oint", frozenset(), "non-systemic")
    ]
    assert (facts.cni, facts.relevant_order, facts.cni_being_started) == (None, False, False)


# --- doNotPerform -----------------------------------------------------------------------------


def test_an_order_not_to_give_a_drug_is_ignored_and_traced() -> None:
    never = rx("tacrolimus", req_id="no-tac")
    never["doNotPerform"] = True
    facts = make_facts(meds=[never, rx("omeprazole", req_id="ppi")])
    assert [m.resource_id for m in facts.active] == ["ppi"]
    assert (facts.cni, facts.on_cni) == (None, False)
    assert [(i.display, i.reason, i.resource_id) for i in facts.ignored_orders] == [
        ("Tacrolimus 1 MG Oral Capsule", "doNotPerform: an order not to give it", "no-tac")
    ]


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_a_draft_not_to_give_a_drug_is_not_being_ordered(hook: str) -> None:
    never = draft("mg_oxide", req_id="no-mg")
    never["doNotPerform"] = True
    facts = make_facts(hook, drafts=[never])
    assert (facts.drafts, facts.being_ordered) == ((), ())
    assert (facts.mg_being_ordered, facts.relevant_order) == (False, False)
    assert [(i.reason, i.resource_id) for i in facts.ignored_orders] == [
        ("doNotPerform: an order not to give it", "no-mg")
    ]


@pytest.mark.parametrize("value", [False, None])
def test_do_not_perform_false_or_absent_is_an_ordinary_order(value: bool | None) -> None:
    order = rx("tacrolimus")
    if value is not None:
        order["doNotPerform"] = value
    facts = make_facts(meds=[order])
    assert facts.on_tacrolimus is True
    assert facts.ignored_orders == ()


# --- magnesium laxatives and bowel preparations, IV magnesium, supplements --------------------

MG_PRODUCTS = [
    # (resource, classes)
    (med_request(text="Magnesium Sulfate Granules (Epsom Salt)"), {"mg_laxative"}),
    (med_request(text="Epsom salt 1 packet by mouth"), {"mg_laxative"}),
    (with_route(med_request(text="magnesium sulfate powder"), "oral"), {"mg_laxative"}),
    (with_route(med_request("6585", "magnesium sulfate"), "oral"), {"mg_laxative"}),
    (med_request(text="magnesium sulfate oral powder"), {"mg_laxative"}),
    (med_request(text="Magnesium Citrate 1.745 GM/30ML Oral Solution"), {"mg_laxative"}),
    (med_request(text="magnesium citrate liquid 300 mL"), {"mg_laxative"}),
    (med_request(text="Citroma oral solution"), {"mg_laxative"}),
    (
        med_request(
            text="sodium sulfate 17.5 GM / potassium sulfate 3.13 GM / magnesium sulfate 1.6 GM "
            "in 177 ML Oral Solution [Suprep Bowel Prep Kit]"
        ),
        {"mg_laxative"},
    ),
    (med_request(text="Suprep Bowel Prep Kit"), {"mg_laxative"}),
    (med_request(text="Magnesium Sulfate 50 % Injectable Solution"), {"iv_mg"}),
    (med_request(text="magnesium sulfate 1 GM in dextrose 100 ML IVPB"), {"iv_mg"}),
    (with_route(med_request("6585", "magnesium sulfate"), "intravenous"), {"iv_mg"}),
    (med_request("6585", "magnesium sulfate"), {"iv_mg"}),
    (med_request(text="Magnesium 2 g IV"), {"iv_mg"}),
    (with_route(med_request(text="magnesium chloride 200 MG/ML"), "intravenous"), {"iv_mg"}),
    (med_request(text="magnesium citrate 100 MG Oral Tablet"), {"oral_mg_supplement"}),
    (med_request(text="Magnesium citrate 200 mg tablets"), {"oral_mg_supplement"}),
    (med_request(text="Magnesium 400 mg tablet"), {"oral_mg_supplement"}),
    (med_request(text="Magnesium 250 MG Oral Capsule"), {"oral_mg_supplement"}),
    (with_route(med_request(text="Magnesium 400 mg"), "oral"), {"oral_mg_supplement"}),
    (med_request("198741"), {"oral_mg_supplement"}),
    (med_request(text="Mag-Ox 400 MG Oral Tablet"), {"oral_mg_supplement"}),
    (med_request(text="Slow-Mag 71.5 mg delayed release tablet"), {"oral_mg_supplement"}),
]


@pytest.mark.parametrize(("resource", "classes"), MG_PRODUCTS)
def test_magnesium_products(resource: dict[str, Any], classes: set[str]) -> None:
    facts = make_facts(meds=[resource])
    (med,) = facts.active
    assert med.classes == classes
    # Only an oral supplement is "on oral magnesium"; only IV Mg is "IV Mg given"; a laxative
    # is neither (4.3, 4.6).
    assert facts.taking_oral_mg is (classes == {"oral_mg_supplement"})
    assert facts.iv_mg_given is (classes == {"iv_mg"})
    assert bool(med.classes & facts.groups["oral_mg_containing"]) is (classes != {"iv_mg"})


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_magnesium_being_ordered(hook: str) -> None:
    laxative = draft("mg_sulfate", req_id="lax")
    with_route(laxative, "oral")
    facts = make_facts(hook, drafts=[laxative])
    assert (facts.mg_being_ordered, facts.iv_mg_given, facts.relevant_order) == (
        False,
        False,
        True,
    )
    iv = with_route(draft("mg_sulfate", req_id="iv"), "intravenous")
    facts = make_facts(hook, drafts=[iv])
    assert (facts.mg_being_ordered, facts.iv_mg_given, facts.relevant_order) == (True, True, True)
    oral = draft("mg_oxide", req_id="ox")
    facts = make_facts(hook, drafts=[oral])
    assert (facts.mg_being_ordered, facts.taking_oral_mg, facts.iv_mg_given) == (
        True,
        False,  # being ordered is not "taking": only active supplements are
        False,
    )


@pytest.mark.parametrize(
    ("resource", "ordered"),
    [
        (med_request(text="Calcium Gluconate 100 MG/ML Injectable Solution"), True),
        (with_route(med_request("1908", "calcium gluconate"), "intravenous"), True),
        (med_request(text="calcium chloride 10 % IV syringe"), True),
        (med_request("198527"), False),  # Calcium Carbonate 250 MG Oral Tablet
        (med_request(text="calcium gluconate 500 mg tablet"), False),
    ],
)
def test_iv_calcium_being_ordered(resource: dict[str, Any], ordered: bool) -> None:
    resource.update(status="draft", id="ca")
    facts = make_facts("order-sign", drafts=[resource])
    assert facts.iv_calcium_ordered is ordered
    assert facts.relevant_order is True


def test_a_statement_with_effective_period_and_oral_route() -> None:
    stmt = statement(text="Magnesium 400 mg", route_name="oral", started_days_ago=90)
    facts = make_facts(statements=[stmt])
    (med,) = facts.active
    assert (med.resource_type, med.route, med.classes) == (
        "MedicationStatement",
        "oral",
        {"oral_mg_supplement"},
    )
    assert med.authored_on is not None and med.authored_on.date().isoformat() == "2026-08-22"
    assert facts.taking_oral_mg is True


# --- brands -----------------------------------------------------------------------------------

BRANDS: list[tuple[str, str, set[str]]] = [
    # (text as an EHR sends it, ingredient, classes)
    ("Prograf 1 MG Oral Capsule", "tacrolimus", {"tacrolimus"}),
    ("Envarsus XR 4 mg tablet", "tacrolimus", {"tacrolimus"}),
    ("Astagraf XL 1 mg", "tacrolimus", {"tacrolimus"}),
    ("Neoral 25 mg capsule", "cyclosporine", {"cyclosporine"}),
    ("Sandimmune 100 mg/mL oral solution", "cyclosporine", {"cyclosporine"}),
    ("Gengraf 100 mg", "cyclosporine", {"cyclosporine"}),
    ("CellCept 500 mg tablet", "mycophenolate mofetil", {"mycophenolate"}),
    ("Myfortic 360 mg", "mycophenolic acid", {"mycophenolate"}),
    ("Rapamune 1 mg", "sirolimus", {"mtor_inhibitor"}),
    ("Zortress 0.75 mg", "everolimus", {"mtor_inhibitor"}),
    ("Maalox Advanced Maximum Strength", "magnesium hydroxide", {"mg_al_antacid"}),
    ("Mylanta Maximum Strength Liquid", "aluminum hydroxide", {"mg_al_antacid"}),
    ("Gaviscon Extra Strength tablets", "magnesium carbonate", {"mg_al_antacid"}),
    ("Phillips' Milk of Magnesia", "magnesium hydroxide", {"mg_al_antacid"}),
    ("Mag-Ox 400", "magnesium oxide", {"oral_mg_supplement"}),
    ("Slow-Mag 64 mg", "magnesium chloride", {"oral_mg_supplement"}),
    ("Mag-Tab SR 84 mg", "magnesium lactate", {"oral_mg_supplement"}),
    ("K-Dur 20 mEq", "potassium chloride", {"k_supplement"}),
    ("Klor-Con M20", "potassium chloride", {"k_supplement"}),
    ("Tums Extra Strength 750", "calcium carbonate", {"ca_supplement"}),
    ("Os-Cal 500", "calcium carbonate", {"ca_supplement"}),
    ("Citracal Petites", "calcium citrate", {"ca_supplement"}),
    ("Prilosec OTC 20 mg", "omeprazole", {"ppi"}),
    ("Nexium 40 mg", "esomeprazole", {"ppi"}),
    ("Protonix 40 mg", "pantoprazole", {"ppi"}),
    ("Prevacid 30 mg", "lansoprazole", {"ppi"}),
    ("Dexilant 60 mg", "dexlansoprazole", {"ppi"}),
    ("Aciphex 20 mg", "rabeprazole", {"ppi"}),
    ("Lasix 40 mg", "furosemide", {"loop_diuretic"}),
    ("Bumex 1 mg", "bumetanide", {"loop_diuretic"}),
    ("Demadex 20 mg", "torsemide", {"loop_diuretic"}),
    ("Microzide 12.5 mg", "hydrochlorothiazide", {"thiazide"}),
    ("Zaroxolyn 2.5 mg", "metolazone", {"thiazide"}),
    ("TOBI 300 mg/5 mL", "tobramycin", {"other_mg_wasting"}),
    ("AmBisome 50 mg vial", "amphotericin b", {"other_mg_wasting"}),
    ("Zometa 4 mg/100 mL", "zoledronic acid", {"other_mg_wasting"}),
    ("Paraplatin 450 mg", "carboplatin", {"other_mg_wasting"}),
    ("Lanoxin 125 mcg", "digoxin", {"digoxin"}),
    ("Digitek 0.25 mg", "digoxin", {"digoxin"}),
    ("Synthroid 100 MCG Oral Tablet", "levothyroxine", {"levothyroxine"}),
    ("Levoxyl 50 mcg", "levothyroxine", {"levothyroxine"}),
    ("Unithroid 75 mcg", "levothyroxine", {"levothyroxine"}),
    ("Euthyrox 25 mcg", "levothyroxine", {"levothyroxine"}),
    ("Cipro 500 mg", "ciprofloxacin", {"fluoroquinolone"}),
    ("Levaquin 750 mg", "levofloxacin", {"fluoroquinolone"}),
    ("Avelox 400 mg", "moxifloxacin", {"fluoroquinolone"}),
    ("Vibramycin 100 mg", "doxycycline", {"tetracycline"}),
    ("Minocin 100 mg", "minocycline", {"tetracycline"}),
    ("Fosamax 70 mg", "alendronate", {"bisphosphonate"}),
    ("Actonel 35 mg", "risedronate", {"bisphosphonate"}),
    ("Boniva 150 mg", "ibandronate", {"bisphosphonate"}),
    ("Tivicay 50 mg", "dolutegravir", {"integrase_inhibitor"}),
    ("Biktarvy", "bictegravir", {"integrase_inhibitor"}),
    ("Promacta 50 mg", "eltrombopag", {"eltrombopag"}),
    ("Omnicef 300 mg", "cefdinir", {"cefdinir"}),
    ("Cuprimine 250 mg", "penicillamine", {"penicillamine"}),
    ("Feosol 325 mg", "ferrous sulfate", {"iron"}),
    ("Slow Fe 142 mg", "ferrous sulfate", {"iron"}),
    ("Slow-Fe 45 mg", "ferrous sulfate", {"iron"}),
]


@pytest.mark.parametrize(("text", "ingredient", "classes"), BRANDS)
def test_a_product_named_by_brand_only_is_its_ingredient(
    text: str, ingredient: str, classes: set[str]
) -> None:
    med = on_file(med_request(text=text))
    assert ingredient in med.ingredients
    assert med.classes == classes
    assert med.matched_by[0].startswith("brand '")


def test_every_class_has_a_brand_case() -> None:
    # 4.6: the brand tables cover the common US brands of every class (IV magnesium sulfate has
    # none; the laxatives' brands are names of their class, tested above).
    covered = {cls for _, _, classes in BRANDS for cls in classes}
    assert covered == set(shipped().medications.displays) - {"iv_mg", "mg_laxative"}
    assert set(MEDICATION_CLASSES) <= set(shipped().medications.displays)


@pytest.mark.parametrize(
    ("text", "ingredients", "classes"),
    [
        # The only ingredient named is simethicone: not an antacid, whatever the brand.
        ("simethicone 125 MG Chewable Tablet [Mylanta Gas]", set(), set()),
        ("Mylanta Gas Minis (simethicone 125 mg)", set(), set()),
        # Named ingredients decide, and the brand adds nothing they do not say.
        (
            "famotidine 10 MG / calcium carbonate 800 MG / magnesium hydroxide 165 MG Chewable "
            "Tablet [Pepcid Complete]",
            {"calcium carbonate", "magnesium hydroxide"},
            {"ca_supplement", "mg_al_antacid"},
        ),
        (
            "calcium carbonate 1000 MG Chewable Tablet [Rolaids]",
            {"calcium carbonate"},
            {"ca_supplement"},
        ),
        ("Gaviscon (alginic acid / sodium bicarbonate)", set(), set()),
        (
            "abacavir 600 MG / dolutegravir 50 MG / lamivudine 300 MG Oral Tablet [Triumeq]",
            {"dolutegravir"},
            {"integrase_inhibitor"},
        ),
        # The brand decides only when nothing else names an ingredient.
        ("Mylanta", {"aluminum hydroxide", "magnesium hydroxide"}, {"mg_al_antacid"}),
        (
            "Rolaids",
            {"calcium carbonate", "magnesium hydroxide"},
            {"ca_supplement", "mg_al_antacid"},
        ),
    ],
)
def test_a_brand_never_contradicts_the_named_ingredients(
    text: str, ingredients: set[str], classes: set[str]
) -> None:
    ingredients_found, classes_found, _, display, _ = classify(
        model(med_request(text=text)), shipped().medications, {}
    )
    assert (set(ingredients_found), set(classes_found), display) == (ingredients, classes, text)


def test_coded_ingredients_win_over_a_brand_in_the_text() -> None:
    # The SCD code says omeprazole; a stray brand word in the text does not add tacrolimus.
    resource = med_request(
        "198051", "Omeprazole 20 MG Delayed Release Oral Capsule", text="Prograf"
    )
    ingredients, classes, matched_by, _, _ = classify(model(resource), shipped().medications, {})
    assert (ingredients, classes, matched_by) == (
        {"omeprazole"},
        {"ppi"},
        ("RxNorm product 198051",),
    )


def test_a_contained_medication_naming_simethicone_is_not_an_antacid() -> None:
    resource = med_request(
        medication_reference="#gas",
        contained=[medication("gas", text="Mylanta Gas", ingredients=[(None, "simethicone")])],
    )
    med = on_file(resource)
    assert (med.ingredients, med.classes, med.display) == (frozenset(), frozenset(), "Mylanta Gas")


def test_a_brand_in_a_coding_display_with_an_unknown_sbd_code() -> None:
    resource = med_request("1000000", "Synthroid 88 MCG Oral Tablet")
    assert resource["medicationCodeableConcept"]["coding"][0]["system"] == RXNORM
    med = on_file(resource)
    assert (med.ingredients, med.classes, med.route) == (
        {"levothyroxine"},
        {"levothyroxine"},
        "oral",
    )


def _classes(facts: Facts) -> list[frozenset[str]]:
    return [m.classes for m in facts.active]


def test_unnamed_magnesium_statement_as_home_medication() -> None:
    # A patient-reported "Magnesium 400 mg" with no salt and no route: an oral supplement.
    facts = make_facts(statements=[statement(text="Magnesium 400 mg", started_days_ago=40)])
    assert _classes(facts) == [frozenset({"oral_mg_supplement"})]
    assert facts.taking_oral_mg is True
