"""Content validation: the shipped cards/ loads and matches the contract; broken copies raise a
``ContentError`` that names the file and the field."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import get_type_hints

import pytest

from cds_service.content import ContentError, Threshold, TopicSpec
from cds_service.facts import PREDICATES, Facts
from cds_service.profile import load_site_content
from cds_service.rules import ADVICE_SPEC, TOPIC_SPECS
from cds_service.rules import RULES as TOPIC_CODES
from tests.facts.builders import CARDS, fired, make_facts, mg, shipped, silent

# --- the shipped content --------------------------------------------------------------------


def test_shipped_cards_load() -> None:
    content = load_site_content(CARDS)
    assert set(content.topics) == set(TOPIC_CODES)
    assert content.settings.max_cards == 5


def test_shipped_defaults_match_the_contract() -> None:
    # Sections 2 and 4 of the contract; every line, window and dose is a default in cards/.
    settings = shipped().settings
    t = settings.thresholds
    twins = {
        name: (line.mmol_per_l, line.mg_per_dl)
        for name, line in t
        if not isinstance(line, float | int)
    }
    assert twins == {
        "mg_critical": (0.50, 1.2),
        "mg_low": (0.66, 1.6),
        "mg_cni_target": (0.70, 1.7),
        "mg_digoxin": (0.82, 2.0),  # 4.2 (v1: 1.0 mmol/L, 2.4 mg/dL)
        "mg_decline_floor": (0.80, 1.95),  # 4.12
        "mg_high": (1.25, 3.0),  # 4.9
        "mg_critical_high": (2.0, 4.8),  # 4.9
        "k_low": (3.5, None),
        "k_critical": (3.0, None),  # 4.1
        "k_sparing_max": (5.0, None),  # 4.11
        "ca_total_low": (2.12, 8.5),
        "ca_total_critical": (1.87, 7.5),  # 4.1
        "ca_ionized_low": (1.15, 4.6),
        "ca_ionized_critical": (1.0, 4.0),  # 4.1
    }
    assert (t.egfr_iv_cap, t.egfr_kidney_failure, t.mg_decline_fraction) == (30, 15, 0.20)
    assert settings.windows.model_dump() == {
        "current_lab_days": 30,
        "critical_max_age_hours": 72,  # 4.3
        "trend_days": 180,
        "monitoring_gap_days": 42,
        "stable_cni_days": 365,  # 4.8
        "stable_monitoring_gap_days": 90,  # 4.8
        "new_cni_days": 14,
        "persistent_low_count": 3,  # 4.3
        "persistent_low_days": 28,  # 4.3
        "weight_max_age_days": 30,  # 4.5
        "albumin_pairing_days": 2,
        "order_session_minutes": 120,
    }
    assert settings.dosing.model_dump() == {
        "paediatric_iv_mg_per_kg_min": 25,  # 4.5: 25-50 mg/kg (max 2 g)
        "paediatric_iv_mg_per_kg_max": 50,
        "paediatric_iv_max_mg": 2000,
        "renal_iv_cap_g": 20,  # 4.4: 20 g per 48 h
        "renal_iv_cap_hours": 48,
        "adult_age_years": 18,
    }
    assert settings.accept_preliminary_results is False
    assert settings.active_medication_statuses == ["active"]
    assert settings.max_cards == 5
    assert [r.display for r in settings.default_override_reasons] == [
        "Already addressed",
        "Not clinically relevant for this patient",
        "Will monitor",
        "Patient declined",
    ]


# The conventional mg/dL twins are rounded conversions of the mmol/L lines (Mg: x 2.4305,
# Ca: x 4.008): 0.50 mmol/L is 1.215 mg/dL and is written 1.2, 2.0 mmol/L is 4.86 and is
# written 4.8. A twin that is not a conversion of its line (a typo such as 1.2 <-> 0.60) is
# more than 1.5% off.
TWIN_FACTORS = {
    "mg_critical": 2.4305,
    "mg_low": 2.4305,
    "mg_cni_target": 2.4305,
    "mg_digoxin": 2.4305,
    "mg_decline_floor": 2.4305,
    "mg_high": 2.4305,
    "mg_critical_high": 2.4305,
    "ca_total_low": 4.008,
    "ca_total_critical": 4.008,
    "ca_ionized_low": 4.008,
    "ca_ionized_critical": 4.008,
}


@pytest.mark.parametrize(("name", "factor"), TWIN_FACTORS.items())
def test_shipped_twins_are_conversions_of_each_other(name: str, factor: float) -> None:
    threshold = getattr(shipped().settings.thresholds, name)
    assert threshold.mg_per_dl is not None
    assert threshold.mg_per_dl == pytest.approx(threshold.mmol_per_l * factor, rel=0.015)
    assert threshold.mg_per_dl / factor == pytest.approx(threshold.mmol_per_l, rel=0.015)


def test_every_twinned_threshold_is_checked_for_conversion() -> None:
    t = shipped().settings.thresholds
    twinned = {
        name for name, line in t if isinstance(line, Threshold) and line.mg_per_dl is not None
    }
    assert twinned == set(TWIN_FACTORS)


VALUE_SETS = {
    # 4.7: whole-blood Mg (21377-7, 2593-2) out; albumin method codes in, 2862-1 out.
    "magnesium": ["19123-9", "2601-3"],
    "potassium": ["2823-3", "6298-4"],
    "calcium": ["17861-6", "2000-8", "49765-1"],
    "ionized_calcium": ["1994-3", "1995-0", "17863-2"],
    "albumin": ["1751-7", "61151-7", "61152-5"],
    "creatinine": ["2160-0", "38483-4", "14682-9"],
    "egfr": [
        "98979-8",
        "62238-1",
        "33914-3",
        "77147-7",
        "48642-3",
        "48643-1",
        "88293-6",
        "88294-4",
    ],
    "tacrolimus_level": ["11253-2"],
    "cyclosporine_level": ["3520-4"],
    "body_weight": ["29463-7"],  # 4.5
}


@pytest.mark.parametrize(("analyte", "codes"), VALUE_SETS.items())
def test_shipped_value_sets_match_the_contract(analyte: str, codes: list[str]) -> None:
    spec = shipped().analytes[analyte]
    assert spec.system == "http://loinc.org"
    assert sorted(spec.codes) == sorted(codes)


def test_every_shipped_analyte_is_checked() -> None:
    assert set(shipped().analytes) == set(VALUE_SETS)


@pytest.mark.parametrize("code", ["21377-7", "2593-2", "2862-1"])
def test_codes_the_contract_leaves_out_are_in_no_value_set(code: str) -> None:
    assert ("http://loinc.org", code) not in shipped().analyte_by_code


def test_shipped_kidney_failure_condition_value_set() -> None:
    # 4.4: ESRD, CKD stage 5, dependence on dialysis (SNOMED) and N18.6, Z99.2 (ICD-10-CM).
    assert {(system, code) for (system, code), name in shipped().condition_by_code.items()} == {
        ("http://snomed.info/sct", "46177005"),
        ("http://snomed.info/sct", "433146000"),
        ("http://snomed.info/sct", "105502003"),
        ("http://hl7.org/fhir/sid/icd-10-cm", "N18.6"),
        ("http://hl7.org/fhir/sid/icd-10-cm", "Z99.2"),
    }
    assert set(shipped().condition_by_code.values()) == {"kidney_failure"}


@pytest.mark.parametrize(
    ("analyte", "unit", "to_canonical"),
    [
        ("magnesium", "mmol/l", 1),
        ("magnesium", "meq/l", 0.5),
        ("magnesium", "mg/dl", 1 / 2.4305),
        ("magnesium", "mg/l", 1 / 24.305),
        ("calcium", "mmol/l", 1),
        ("calcium", "meq/l", 0.5),
        ("calcium", "mg/dl", 1 / 4.008),
        ("ionized_calcium", "meq/l", 0.5),
        ("ionized_calcium", "mg/dl", 1 / 4.008),
        ("potassium", "mmol/l", 1),
        ("potassium", "meq/l", 1),
        ("albumin", "g/dl", 1),
        ("albumin", "g/l", 0.1),
        ("creatinine", "mg/dl", 1),
        ("creatinine", "umol/l", 1 / 88.42),
        ("creatinine", "µmol/l", 1 / 88.42),
        # 4.4: the eGFR spellings EHRs send (keys are compared without spaces, in lower case)
        ("egfr", "ml/min/1.73m2", 1),
        ("egfr", "ml/min/1.73m^2", 1),
        ("egfr", "ml/min/{1.73_m2}", 1),
        # 4.5: body weight in kg
        ("body_weight", "kg", 1),
        ("body_weight", "g", 0.001),
        ("body_weight", "[lb_av]", 0.45359237),
        ("body_weight", "lb", 0.45359237),
    ],
)
def test_shipped_unit_conversions_match_the_contract(
    analyte: str, unit: str, to_canonical: float
) -> None:
    spec = shipped().units[analyte][unit]
    assert spec.multiply / spec.divide == pytest.approx(to_canonical, rel=1e-12)


INGREDIENT_CODES = {
    "tacrolimus": {"42316"},
    "cyclosporine": {"3008"},
    "mycophenolate": {"68149", "7145"},
    "mtor_inhibitor": {"35302", "141704"},
    "mg_al_antacid": {"6581", "612", "29155"},
    "oral_mg_supplement": {"6582", "6579", "52358", "314718"},
    "iv_mg": {"6585"},
    "k_supplement": {"8591", "54993", "89903", "54987"},
    "ca_supplement": {"1897", "1908", "1901", "214342"},
    "ppi": {"7646", "283742", "40790", "17128", "816346", "114979"},
    "loop_diuretic": {"4603", "1808", "38413", "4109"},
    "thiazide": {"5487", "2409", "6916", "5764"},
    "other_mg_wasting": {
        "1596450",
        "10627",
        "641",
        "732",
        "2555",
        "33562",
        "7994",
        "318341",
        "263034",
        # 4.11 adds carboplatin, ifosfamide and zoledronic acid
        "40048",
        "5657",
        "77655",
    },
    "digoxin": {"3407"},
    "levothyroxine": {"10582"},
    "fluoroquinolone": {"2551", "82122", "139462"},
}


def _codes_of_class(cls: str) -> set[str]:
    index = shipped().medications
    return {
        code
        for code, ingredient in index.ingredient_by_code.items()
        if cls in index.classes_by_ingredient[ingredient]
    }


@pytest.mark.parametrize(("cls", "codes"), INGREDIENT_CODES.items())
def test_shipped_ingredient_codes_match_the_contract(cls: str, codes: set[str]) -> None:
    assert _codes_of_class(cls) == codes


NAME_ONLY_INGREDIENTS = {
    # "no verified code": matched by name until a site adds its code
    "mg_al_antacid": {"magnesium trisilicate", "magaldrate"},
    "oral_mg_supplement": {
        "magnesium citrate",
        "magnesium glycinate",
        "magnesium lactate",
        "magnesium aspartate",
        "magnesium malate",
        "magnesium taurate",
    },
    "ca_supplement": {"calcium citrate"},
}


@pytest.mark.parametrize(("cls", "names"), NAME_ONLY_INGREDIENTS.items())
def test_ingredients_without_a_verified_code_are_matched_by_name(cls: str, names: set[str]) -> None:
    index = shipped().medications
    coded = set(index.ingredient_by_code.values())
    for name in names:
        assert cls in index.classes_by_ingredient[name], name
        assert name not in coded, name


PRODUCTS = {
    "tacrolimus": [
        "108515",
        "1664463",
        "1431987",
        "1664456",
        "1664464",
        "374015",
        "198377",
        "198378",
        "108513",
        "108514",
    ],
    "cyclosporine": ["197553", "205168", "197552", "212810"],
    "mycophenolate": ["199058", "200060"],
    "mg_al_antacid": [
        "237872",
        "205116",
        "211633",
        "211637",
        "211639",
        "211640",
        "212978",
        "205233",
        "213208",
        "205234",
        "198455",
    ],
    "oral_mg_supplement": ["198740", "198741", "198936", "199010"],
    "ca_supplement": ["198527", "198529", "198533", "198535"],
    "k_supplement": ["198116"],
    "ppi": ["198051", "199119", "211691"],
    "loop_diuretic": ["200801", "200809", "205732", "197732", "199610"],
    "digoxin": ["197604", "197606", "197605", "104206"],
}


def _product_classes(code: str) -> set[str]:
    index = shipped().medications
    return {
        cls
        for ingredient in index.ingredients_by_product.get(code, ())
        for cls in index.classes_by_ingredient[ingredient]
    }


@pytest.mark.parametrize(("cls", "codes"), PRODUCTS.items())
def test_shipped_product_table_seeds_the_contract_codes(cls: str, codes: list[str]) -> None:
    missing = [code for code in codes if cls not in _product_classes(code)]
    assert missing == []


def test_component_codes_are_not_in_the_product_table() -> None:
    # 564557, 315328, 336883, 252430 are components in the sandbox list, not what it orders.
    products = shipped().medications.ingredients_by_product
    assert [c for c in ("564557", "315328", "336883", "252430") if c in products] == []


def test_cni_and_spacing_groups() -> None:
    groups = shipped().medications.groups
    assert groups["cni"] == {"tacrolimus", "cyclosporine"}
    assert groups["needs_mg_spacing"] == {
        "tacrolimus",
        "mycophenolate",
        "levothyroxine",
        "fluoroquinolone",
        "tetracycline",
        "bisphosphonate",
        "integrase_inhibitor",
        "eltrombopag",
        "cefdinir",
        "penicillamine",
        "ca_supplement",
        "iron",
    }
    assert groups["mg_wasting"] == {
        "ppi",
        "loop_diuretic",
        "thiazide",
        "other_mg_wasting",
        "mtor_inhibitor",
    }
    # 4.10: every oral Mg-containing product, bowel preps and laxatives included.
    assert groups["oral_mg_containing"] == {"oral_mg_supplement", "mg_al_antacid", "mg_laxative"}


# 4.10: the interval per drug, from its label.
SPACING = {
    "ciprofloxacin": "2 h before or 6 h after the magnesium",
    "levofloxacin": "2 h apart",
    "moxifloxacin": "4 h before or 8 h after the magnesium",
    "doxycycline": "2-3 h apart",
    "minocycline": "2-3 h apart",
    "tetracycline": "2-3 h apart",
    "levothyroxine": "4 h apart",
    "alendronate": "at least 30 min before the magnesium (and anything else)",
    "risedronate": "at least 30 min before the magnesium (and anything else)",
    "ibandronate": "at least 60 min before the magnesium (and anything else)",
    "dolutegravir": "2 h before or 6 h after the magnesium",
    "bictegravir": "2 h before or 6 h after the magnesium",
    "eltrombopag": "2 h before or 4 h after the magnesium",
    "cefdinir": "2 h apart",
    "penicillamine": "2 h apart",
    "iron": "2 h apart",
    "tacrolimus": "2 h apart",
    "mycophenolate": "2 h apart",
    "ca_supplement": "2 h apart",
}


def test_shipped_spacing_intervals_match_the_contract() -> None:
    spacing = shipped().medications.spacing
    assert {name: entry.interval for name, entry in spacing.items()} == SPACING
    sources = shipped().sources
    assert all(key in sources for entry in spacing.values() for key in entry.sources)


def test_shipped_route_lists_match_the_contract() -> None:
    # 4.6: SNOMED route codes; dose-form words are in the product tests.
    routes = shipped().medications.routes
    assert routes.system == "http://snomed.info/sct"
    assert routes.non_systemic_codes == {
        "6064005",  # topical
        "448598008",  # cutaneous
        "54485002",  # ophthalmic
        "10547007",  # otic
        "46713006",  # nasal
        "16857009",  # vaginal
    }
    assert {"47625008", "78421000", "34206005"} <= routes.parenteral_codes  # IV, IM, SC
    assert routes.oral_codes == {"26643006"}


# Indicators each topic can emit (contract sections 2 and 4.9).
INDICATORS = {
    "hypomagnesemia": {"critical", "warning", "info"},
    "mg-digoxin": {"warning"},
    "mg-refractory-hypokalemia": {"critical", "warning"},
    "mg-refractory-hypocalcemia": {"warning"},
    "antacid-tacrolimus": {"warning", "info"},
    "antacid-mycophenolate": {"warning", "info"},
    "mg-supplement-spacing": {"info"},
    "mg-monitoring-gap": {"warning", "info"},
    "mg-wasting-comedication": {"warning", "info"},
    "mg-declining": {"info"},
    "hypermagnesemia": {"critical", "warning", "info"},
}


@pytest.mark.parametrize("spec", TOPIC_SPECS, ids=lambda spec: spec.code)
def test_shipped_topics_have_a_text_for_everything_the_rule_emits(spec: TopicSpec) -> None:
    compiled = shipped().topics[spec.code]
    assert compiled.topic.code == spec.code
    assert set(spec.indicators) == INDICATORS[spec.code]
    assert set(compiled.summaries) == set(spec.indicators)
    assert set(spec.notes) <= set(compiled.notes)
    assert set(spec.mechanisms) <= set(compiled.mechanisms)


def test_every_topic_of_the_contract_has_a_rule() -> None:
    assert set(TOPIC_CODES) == set(INDICATORS)


# 4.12: 24 h for hypomagnesemia info, mg-declining, mg-monitoring-gap and
# mg-wasting-comedication; never for a critical tier; nothing else snoozes by default.
SNOOZE = {
    "hypomagnesemia": {"info": 24},
    "mg-declining": {"info": 24},
    "mg-monitoring-gap": {"info": 24, "warning": 24},
    "mg-wasting-comedication": {"info": 24, "warning": 24},
}


def test_shipped_snooze_defaults_match_the_contract() -> None:
    snooze = {
        code: dict(topic.topic.snooze_hours)
        for code, topic in shipped().topics.items()
        if topic.topic.snooze_hours
    }
    assert snooze == SNOOZE
    assert all("critical" not in hours for hours in snooze.values())


def test_shipped_iv_and_oral_dosing_text_matches_the_contract() -> None:
    # 4.14: IV 1-2 g over 15 min then 1-4 mg/min; Mg oxide "12 mmol (about 480 mg of magnesium
    # oxide)", never "480 mg elemental".
    lines = shipped().advice.lines
    iv = lines["iv_adult"].render(**_ADVICE_EXAMPLES)
    assert "Magnesium sulfate 1-2 g IV over 15 minutes, then 1-4 mg/min infusion" in iv
    oral = lines["oral_start"].render(**_ADVICE_EXAMPLES)
    assert "12 mmol Mg (about 480 mg of magnesium oxide)" in oral
    assert "elemental" not in oral


def _cite(*keys: str) -> str:
    return "[" + ", ".join(keys) + "]"


_ADVICE_EXAMPLES = {
    **{name: values[0] for name, values in ADVICE_SPEC.values.items()},
    "cite": _cite,
}


def test_named_predicates_are_exactly_the_boolean_facts() -> None:
    # A topic table may name any predicate of PREDICATES, and nothing else: every boolean
    # property of Facts is registered, and every registered name is one.
    booleans = {
        name
        for name, member in vars(Facts).items()
        if isinstance(member, property)
        and member.fget is not None
        and get_type_hints(member.fget).get("return") is bool
    }
    assert booleans == PREDICATES
    facts = make_facts()
    for name in sorted(PREDICATES):
        assert isinstance(getattr(facts, name), bool), name
        assert facts.holds(name) is getattr(facts, name), name
    with pytest.raises(KeyError, match="unknown predicate 'present'"):
        facts.holds("present")


# --- broken copies --------------------------------------------------------------------------


def copy_cards(tmp_path: Path) -> Path:
    target = tmp_path / "cards"
    shutil.copytree(CARDS, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


MG_CRITICAL = "mg_critical:         {mmol_per_l: 0.50, mg_per_dl: 1.2}"
MG_LOW = "mg_low:              {mmol_per_l: 0.66, mg_per_dl: 1.6}"
DETAIL_HYPO = '{% if indicator == "critical" %}'
DECLINING_SUMMARY = "{{ cni }}:"


# (id, breaker(cards dir), file the message must name, words the message must contain)
BROKEN: list[tuple[str, Callable[[Path], object], str, list[str]]] = [
    (
        "yaml-syntax",
        lambda d: edit(d / "settings.yaml", "thresholds:\n", "thresholds: [unclosed\n"),
        "settings.yaml",
        ["line"],
    ),
    (
        "threshold-wrong-type",
        lambda d: edit(d / "settings.yaml", "{mmol_per_l: 0.66,", "{mmol_per_l: low,"),
        "settings.yaml",
        ["thresholds.mg_low.mmol_per_l", "number"],
    ),
    (
        "threshold-negative",
        lambda d: edit(d / "settings.yaml", "{mmol_per_l: 3.5}", "{mmol_per_l: -3.5}"),
        "settings.yaml",
        ["thresholds.k_low.mmol_per_l", "greater than 0"],
    ),
    (
        "threshold-unknown-key",
        lambda d: edit(d / "settings.yaml", "mg_critical:", "mg_critcal:"),
        "settings.yaml",
        ["thresholds.mg_critcal", "thresholds.mg_critical"],
    ),
    (
        "mg-critical-above-low",
        lambda d: edit(
            d / "settings.yaml", MG_CRITICAL, "mg_critical: {mmol_per_l: 0.80, mg_per_dl: 1.9}"
        ),
        "settings.yaml",
        ["thresholds", "mg_critical must be below mg_low"],
    ),
    (
        "mg-critical-twin-above-low-twin",
        lambda d: edit(
            d / "settings.yaml", MG_CRITICAL, "mg_critical: {mmol_per_l: 0.50, mg_per_dl: 1.7}"
        ),
        "settings.yaml",
        ["thresholds", "mg_critical must be below mg_low (mg_per_dl)"],
    ),
    (
        "mg-high-below-cni-target",
        lambda d: edit(
            d / "settings.yaml",
            "mg_high:             {mmol_per_l: 1.25, mg_per_dl: 3.0}",
            "mg_high: {mmol_per_l: 0.65, mg_per_dl: 3.0}",
        ),
        "settings.yaml",
        ["thresholds", "mg_cni_target must be below mg_high"],
    ),
    (
        "kidney-failure-line-above-iv-cap",
        lambda d: edit(d / "settings.yaml", "egfr_kidney_failure: 15", "egfr_kidney_failure: 45"),
        "settings.yaml",
        ["thresholds", "egfr_kidney_failure must be below egfr_iv_cap"],
    ),
    (
        "window-wrong-type",
        lambda d: edit(d / "settings.yaml", "current_lab_days: 30", "current_lab_days: thirty"),
        "settings.yaml",
        ["windows.current_lab_days"],
    ),
    (
        "window-missing",
        lambda d: edit(d / "settings.yaml", "  stable_cni_days: 365", "  stable_cni_dayz: 365"),
        "settings.yaml",
        ["windows.stable_cni_days", "Field required"],
    ),
    (
        "paediatric-dose-range-reversed",
        lambda d: edit(
            d / "settings.yaml",
            "paediatric_iv_mg_per_kg_min: 25",
            "paediatric_iv_mg_per_kg_min: 75",
        ),
        "settings.yaml",
        ["dosing", "paediatric_iv_mg_per_kg_min must not exceed the max"],
    ),
    (
        "topic-missing-summary",
        lambda d: edit(
            d / "topics" / "mg-declining.yaml", "summary:\n  info:", "summarx:\n  info:"
        ),
        "mg-declining.yaml",
        ["summary", "Field required"],
    ),
    (
        "topic-jinja-syntax-in-detail",
        lambda d: edit(
            d / "topics" / "hypomagnesemia.yaml", DETAIL_HYPO, '{% if indicator == "critical" %'
        ),
        "hypomagnesemia.yaml",
        ["detail", "line"],
    ),
    (
        "topic-jinja-syntax-in-summary",
        lambda d: edit(d / "topics" / "mg-declining.yaml", DECLINING_SUMMARY, "{{ cni :"),
        "mg-declining.yaml",
        ["summary.info", "line 1"],
    ),
    (
        "topic-undeclared-variable",
        lambda d: edit(
            d / "topics" / "mg-declining.yaml", DECLINING_SUMMARY, "{{ cni }} {{ tac_dose }}:"
        ),
        "mg-declining.yaml",
        ["summary.info", "unknown variable tac_dose"],
    ),
    (
        "topic-variable-of-another-topic",
        # mg-digoxin provides "target"; mg-declining does not.
        lambda d: edit(
            d / "topics" / "mg-declining.yaml", DECLINING_SUMMARY, "{{ cni }} {{ target }}:"
        ),
        "mg-declining.yaml",
        ["summary.info", "unknown variable target"],
    ),
    (
        "topic-unknown-indicator",
        lambda d: edit(
            d / "topics" / "mg-declining.yaml", "summary:\n  info:", "summary:\n  urgent:"
        ),
        "mg-declining.yaml",
        ["summary.urgent"],
    ),
    (
        "topic-indicator-never-emitted",
        lambda d: edit(
            d / "topics" / "mg-declining.yaml",
            "summary:\n  info:",
            'summary:\n  warning: "Mg falling"\n  info:',
        ),
        "mg-declining.yaml",
        ["summary", "the rule never emits ['warning']"],
    ),
    (
        "topic-missing-note",
        lambda d: edit(d / "topics" / "hypomagnesemia.yaml", "  cni_review:", "  cni_reveiw:"),
        "hypomagnesemia.yaml",
        ["notes", "missing ['cni_review']"],
    ),
    (
        "topic-missing-mechanism",
        lambda d: edit(d / "topics" / "mg-wasting-comedication.yaml", "  ppi:\n", "  pp1:\n"),
        "mg-wasting-comedication.yaml",
        ["mechanisms", "missing ['ppi']"],
    ),
    (
        "topic-code-not-file-name",
        lambda d: edit(
            d / "topics" / "mg-declining.yaml", "code: mg-declining", "code: mg-falling"
        ),
        "mg-declining.yaml",
        ["code", "mg-falling"],
    ),
    (
        "cite-unknown-source-in-detail",
        lambda d: edit(
            d / "topics" / "mg-digoxin.yaml",
            "cite('digoxin-label', '003', '004')",
            "cite('digoxin-label', '003', '999')",
        ),
        "mg-digoxin.yaml",
        ["detail", "cites sources not in sources.yaml", "999"],
    ),
    (
        "cite-unknown-source-in-note",
        lambda d: edit(
            d / "topics" / "hypomagnesemia.yaml",
            "(odds ratio 2.12) {{ cite('001') }}",
            "(odds ratio 2.12) {{ cite('ppi-study') }}",
        ),
        "hypomagnesemia.yaml",
        ["notes.ppi", "cites sources not in sources.yaml", "ppi-study"],
    ),
    (
        "cite-unknown-source-in-advice",
        lambda d: edit(
            d / "advice.yaml",
            "until Mg normalises {{ cite('003') }}",
            "until Mg normalises {{ cite('030') }}",
        ),
        "advice.yaml",
        ["lines.iv_adult", "cites sources not in sources.yaml", "030"],
    ),
    (
        "advice-missing-key",
        lambda d: edit(d / "advice.yaml", '  oral_more: "already', '  oral_mor: "already'),
        "advice.yaml",
        ["actions", "missing ['oral_more']"],
    ),
    (
        "advice-undeclared-variable",
        lambda d: edit(d / "advice.yaml", "IV {{ iv_mg }} already", "IV {{ iv_drug }} already"),
        "advice.yaml",
        ["actions.iv_given", "unknown variable iv_drug"],
    ),
    (
        "advice-jinja-syntax",
        lambda d: edit(d / "advice.yaml", "IV {{ iv_mg }} already", "IV {{ iv_mg } already"),
        "advice.yaml",
        ["actions.iv_given", "line 1"],
    ),
    (
        "spacing-unknown-source",
        lambda d: edit(
            d / "medications.yaml",
            'sources: [levofloxacin-label, "003"]',
            'sources: [levaquin-label, "003"]',
        ),
        "medications.yaml",
        ["spacing.levofloxacin.sources", "levaquin-label"],
    ),
    (
        "spacing-unknown-drug",
        lambda d: edit(d / "medications.yaml", "  cefdinir:      {", "  cefdinyr:      {"),
        "medications.yaml",
        ["spacing names unknown ingredients or classes", "cefdinyr"],
    ),
    (
        "product-unknown-ingredient",
        lambda d: edit(
            d / "medications.yaml",
            '"237872": [aluminum hydroxide, magnesium hydroxide]',
            '"237872": [aluminum hydroxide, magnesium hydroxyde]',
        ),
        "medications.yaml",
        ["products.237872", "magnesium hydroxyde"],
    ),
    (
        "brand-unknown-ingredient",
        lambda d: edit(d / "medications.yaml", "Synthroid: [levothyroxine]", "Synthroid: [T4]"),
        "medications.yaml",
        ["brands.Synthroid", "T4"],
    ),
    (
        "refinement-unknown-class",
        lambda d: edit(
            d / "medications.yaml",
            "route: oral, becomes: mg_laxative}",
            "route: oral, becomes: laxative}",
        ),
        "medications.yaml",
        ["refinements.0", "laxative"],
    ),
    (
        "route-unknown-list",
        lambda d: edit(d / "medications.yaml", "  non_systemic:\n", "  local:\n"),
        "medications.yaml",
        ["routes.non_systemic", "Field required"],
    ),
    (
        "group-unknown-class",
        lambda d: edit(
            d / "medications.yaml",
            "cni: [tacrolimus, cyclosporine]",
            "cni: [tacrolimus, ciclosporin]",
        ),
        "medications.yaml",
        ["groups.cni", "ciclosporin"],
    ),
    (
        "class-missing",
        lambda d: edit(d / "medications.yaml", "  mg_laxative:\n", "  mg_purgative:\n"),
        "medications.yaml",
        ["classes missing", "mg_laxative"],
    ),
    (
        "valueset-duplicate-code",
        lambda d: edit(
            d / "valuesets.yaml",
            'codes: ["2823-3", "6298-4"]',
            'codes: ["2823-3", "6298-4", "19123-9"]',
        ),
        "valuesets.yaml",
        ["analytes.potassium.codes", "19123-9"],
    ),
    (
        "valueset-unknown-unit-family",
        lambda d: edit(
            d / "valuesets.yaml",
            "meq/L:  {multiply: 0.5, family: molar}",
            "meq/L:  {multiply: 0.5, family: equivalent}",
        ),
        "valuesets.yaml",
        ["analytes.magnesium.units.meq/L.family"],
    ),
    (
        "valueset-missing-analyte",
        lambda d: edit(d / "valuesets.yaml", "  body_weight:\n", "  weight:\n"),
        "valuesets.yaml",
        ["analytes", "missing analytes ['body_weight']", "unknown analytes ['weight']"],
    ),
    (
        "valueset-missing-condition-set",
        lambda d: edit(d / "valuesets.yaml", "  kidney_failure:\n", "  esrd:\n"),
        "valuesets.yaml",
        ["conditions", "missing condition value sets ['kidney_failure']"],
    ),
    (
        "formulary-missing-entry",
        lambda d: edit(d / "formulary.yaml", "  tacrolimus_trough:", "  tacrolimus_level:"),
        "formulary.yaml",
        ["lab_orders.tacrolimus_trough"],
    ),
    (
        "source-unknown-kind",
        lambda d: edit(d / "sources.yaml", "kind: label", "kind: leaflet"),
        "sources.yaml",
        ["sources.prograf-label.kind"],
    ),
    (
        "missing-topic-file",
        lambda d: (d / "topics" / "mg-declining.yaml").unlink(),
        "topics",
        ["topic files missing", "mg-declining"],
    ),
    (
        "unknown-topic-file",
        lambda d: shutil.copy(d / "topics" / "mg-declining.yaml", d / "topics" / "mg-rising.yaml"),
        "topics",
        ["no rule for topics ['mg-rising']"],
    ),
    (
        "missing-settings-file",
        lambda d: (d / "settings.yaml").unlink(),
        "settings.yaml",
        ["file is missing"],
    ),
    (
        "missing-advice-file",
        lambda d: (d / "advice.yaml").unlink(),
        "advice.yaml",
        ["file is missing"],
    ),
]


@pytest.mark.parametrize(
    ("breaker", "file", "words"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN]
)
def test_broken_copy_raises_content_error_naming_file_and_field(
    tmp_path: Path, breaker: Callable[[Path], object], file: str, words: list[str]
) -> None:
    cards = copy_cards(tmp_path)
    breaker(cards)
    with pytest.raises(ContentError) as raised:
        load_site_content(cards)
    message = str(raised.value)
    assert str(cards) in message
    assert file in message
    for word in words:
        assert word in message


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="not a directory"):
        load_site_content(tmp_path / "nowhere")


def test_a_site_edit_takes_effect(tmp_path: Path) -> None:
    """Thresholds live in cards/, not in code: moving the low line moves the card."""
    cards = copy_cards(tmp_path)
    edit(cards / "settings.yaml", MG_LOW, "mg_low: {mmol_per_l: 0.60, mg_per_dl: 1.45}")
    content = load_site_content(cards)
    silent("hypomagnesemia", labs=[mg(1.5)], content=content)
    assert fired("hypomagnesemia", labs=[mg(1.4)], content=content).values["threshold"] == (
        "1.45 mg/dL"
    )


# --- a site's overlay, merged on top of the shipped cards/ ----------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_an_overlay_merges_key_by_key_on_top(tmp_path: Path) -> None:
    overlay = tmp_path / "site"
    write(
        overlay / "settings.yaml",
        "thresholds:\n  mg_low: {mmol_per_l: 0.60, mg_per_dl: 1.45}\nmax_cards: 3\n",
    )
    write(
        overlay / "topics" / "mg-declining.yaml",
        'summary:\n  info: "Mg falling on {{ cni }}: {{ mg }}"\n',
    )
    content = load_site_content(CARDS, [overlay])
    assert content.overlays == (overlay,)
    t = content.settings.thresholds
    assert (t.mg_low.mmol_per_l, t.mg_low.mg_per_dl) == (0.60, 1.45)
    assert (t.mg_critical.mmol_per_l, t.mg_critical.mg_per_dl) == (0.50, 1.2)  # kept
    assert content.settings.max_cards == 3
    assert content.settings.windows == shipped().settings.windows
    declining = content.topics["mg-declining"]
    assert declining.path == overlay / "topics" / "mg-declining.yaml"
    assert declining.topic.summary == {"info": "Mg falling on {{ cni }}: {{ mg }}"}
    assert declining.topic.detail == shipped().topics["mg-declining"].topic.detail
    silent("hypomagnesemia", labs=[mg(1.5)], content=content)
    assert fired("hypomagnesemia", labs=[mg(1.4)], content=content).values["threshold"] == (
        "1.45 mg/dL"
    )


# (id, file under the overlay, its text, words the message must contain)
BROKEN_OVERLAYS = [
    (
        "settings-field",
        "settings.yaml",
        "windows:\n  monitoring_gap_days: six weeks\n",
        ["windows.monitoring_gap_days"],
    ),
    (
        "settings-order",
        "settings.yaml",
        "thresholds:\n  mg_digoxin: {mmol_per_l: 0.82, mg_per_dl: 2.0}\n"
        "  mg_critical: {mmol_per_l: 0.90, mg_per_dl: 2.2}\n",
        ["thresholds", "mg_critical must be below mg_low"],
    ),
    (
        "topic-undeclared-variable",
        "topics/mg-declining.yaml",
        'summary:\n  info: "Mg falling on {{ cni }}: {{ patient_name }}"\n',
        ["summary.info", "unknown variable patient_name"],
    ),
    (
        "topic-unknown-cite",
        "topics/mg-digoxin.yaml",
        "notes:\n  kidney: \"eGFR {{ egfr }} {{ cite('local-protocol') }}\"\n",
        ["notes.kidney", "local-protocol"],
    ),
    (
        "advice-undeclared-variable",
        "advice.yaml",
        'actions:\n  oral_start: "start {{ oral_brand }}"\n',
        ["actions.oral_start", "unknown variable oral_brand"],
    ),
    (
        "spacing-unknown-source",
        "medications.yaml",
        'spacing:\n  levothyroxine: {interval: "4 h apart", sources: [site-protocol]}\n',
        ["spacing.levothyroxine.sources", "site-protocol"],
    ),
    (
        "formulary-label-too-long",
        "formulary.yaml",
        "medications:\n  oral_magnesium:\n    label: " + "x" * 81 + "\n",
        ["medications.oral_magnesium.label"],
    ),
]


@pytest.mark.parametrize(
    ("relative", "text", "words"),
    [case[1:] for case in BROKEN_OVERLAYS],
    ids=[case[0] for case in BROKEN_OVERLAYS],
)
def test_a_broken_overlay_names_the_overlay_file_and_the_field(
    tmp_path: Path, relative: str, text: str, words: list[str]
) -> None:
    overlay = tmp_path / "site"
    broken = write(overlay / relative, text)
    with pytest.raises(ContentError) as raised:
        load_site_content(CARDS, [overlay])
    message = str(raised.value)
    assert message.startswith(f"{broken}: ")
    for word in words:
        assert word in message


def test_an_overlay_topic_without_a_rule_is_refused(tmp_path: Path) -> None:
    overlay = tmp_path / "site"
    write(overlay / "topics" / "mg-rising.yaml", "code: mg-rising\n")
    with pytest.raises(ContentError, match=r"no rule for topics \['mg-rising'\]"):
        load_site_content(CARDS, [overlay])


def test_an_overlay_that_is_not_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match=f"{tmp_path / 'nowhere'}: not a directory"):
        load_site_content(CARDS, [tmp_path / "nowhere"])
