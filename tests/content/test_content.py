"""Content validation: the shipped cards/ loads and matches the contract; broken copies raise a
``ContentError`` that names the file and the field."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from cds_service.content import ContentError
from cds_service.profile import load_site_content
from cds_service.rules import RULES as TOPIC_CODES
from tests.facts.builders import CARDS, fired, mg, shipped, silent

# --- the shipped content --------------------------------------------------------------------


def test_shipped_cards_load() -> None:
    content = load_site_content(CARDS)
    assert set(content.topics) == set(TOPIC_CODES)
    assert content.settings.max_cards == 5


def test_shipped_defaults_match_the_contract() -> None:
    settings = shipped().settings
    t = settings.thresholds
    assert (t.mg_critical.mmol_per_l, t.mg_critical.mg_per_dl) == (0.50, 1.2)
    assert (t.mg_low.mmol_per_l, t.mg_low.mg_per_dl) == (0.66, 1.6)
    assert (t.mg_cni_target.mmol_per_l, t.mg_cni_target.mg_per_dl) == (0.70, 1.7)
    assert (t.mg_digoxin.mmol_per_l, t.mg_digoxin.mg_per_dl) == (1.0, 2.4)
    assert t.k_low.mmol_per_l == 3.5 and t.k_critical.mmol_per_l == 3.0
    assert (t.ca_total_low.mmol_per_l, t.ca_total_low.mg_per_dl) == (2.12, 8.5)
    assert (t.ca_ionized_low.mmol_per_l, t.ca_ionized_low.mg_per_dl) == (1.15, 4.6)
    assert t.egfr_iv_cap == 30 and t.mg_decline_fraction == 0.20
    w = settings.windows
    assert (w.current_lab_days, w.trend_days, w.monitoring_gap_days) == (30, 180, 42)
    assert (w.new_cni_days, w.albumin_pairing_days) == (14, 2)
    assert settings.accept_preliminary_results is False
    assert settings.active_medication_statuses == ["active"]
    assert [r.display for r in settings.default_override_reasons] == [
        "Already addressed",
        "Not clinically relevant for this patient",
        "Will monitor",
        "Patient declined",
    ]


@pytest.mark.parametrize(
    ("name", "divisor"),
    [
        ("mg_critical", 2.4305),
        ("mg_low", 2.4305),
        ("mg_cni_target", 2.4305),
        ("mg_digoxin", 2.4305),
        ("ca_total_low", 4.008),
        ("ca_ionized_low", 4.008),
    ],
)
def test_shipped_twins_are_conversions_of_each_other(name: str, divisor: float) -> None:
    threshold = getattr(shipped().settings.thresholds, name)
    assert threshold.mg_per_dl is not None
    assert threshold.mg_per_dl / divisor == pytest.approx(threshold.mmol_per_l, abs=0.015)


VALUE_SETS = {
    "magnesium": ["19123-9", "2601-3", "21377-7", "2593-2"],
    "potassium": ["2823-3", "6298-4"],
    "calcium": ["17861-6", "2000-8", "49765-1"],
    "ionized_calcium": ["1994-3", "1995-0", "17863-2"],
    "albumin": ["1751-7"],
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
}


@pytest.mark.parametrize(("analyte", "codes"), VALUE_SETS.items())
def test_shipped_value_sets_match_the_contract(analyte: str, codes: list[str]) -> None:
    spec = shipped().analytes[analyte]
    assert spec.system == "http://loinc.org"
    assert sorted(spec.codes) == sorted(codes)


@pytest.mark.parametrize(
    ("analyte", "unit", "to_mmol"),
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
    ],
)
def test_shipped_unit_conversions_match_the_contract(
    analyte: str, unit: str, to_mmol: float
) -> None:
    spec = shipped().units[analyte][unit]
    assert spec.multiply / spec.divide == pytest.approx(to_mmol, rel=1e-12)


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
    },
    "digoxin": {"3407"},
}


@pytest.mark.parametrize(("cls", "codes"), INGREDIENT_CODES.items())
def test_shipped_ingredient_codes_match_the_contract(cls: str, codes: set[str]) -> None:
    index = shipped().medications
    found = {code for code, classes in index.class_by_ingredient_code.items() if cls in classes}
    assert found == codes


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


@pytest.mark.parametrize(("cls", "codes"), PRODUCTS.items())
def test_shipped_product_table_seeds_the_contract_codes(cls: str, codes: list[str]) -> None:
    table = shipped().medications.class_by_product_code
    missing = [code for code in codes if cls not in table.get(code, frozenset())]
    assert missing == []


def test_cni_and_spacing_groups() -> None:
    groups = shipped().medications.groups
    assert groups["cni"] == {"tacrolimus", "cyclosporine"}
    assert {
        "tacrolimus",
        "mycophenolate",
        "levothyroxine",
        "fluoroquinolone",
        "ca_supplement",
        "iron",
    } <= groups["needs_mg_spacing"]
    assert {"ppi", "loop_diuretic", "thiazide", "other_mg_wasting"} <= groups["mg_wasting"]


# Indicators each rule can emit (contract table) and note keys it can add: a topic file missing
# one would load but fail when the card is rendered.
EMITTED = {
    "hypomagnesemia": (
        {"critical", "warning", "info"},
        {
            "kidney",
            "egfr_low",
            "on_cni",
            "cni_persistent",
            "ppi",
            "diuretic",
            "other_wasting",
            "digoxin",
        },
    ),
    "mg-digoxin": ({"warning"}, {"kidney"}),
    "mg-refractory-hypokalemia": ({"critical", "warning"}, {"on_cni"}),
    "mg-refractory-hypocalcemia": ({"warning"}, {"on_cni"}),
    "antacid-tacrolimus": ({"warning", "info"}, set()),
    "antacid-mycophenolate": ({"warning", "info"}, set()),
    "mg-supplement-spacing": ({"info"}, set()),
    "mg-monitoring-gap": ({"warning", "info"}, set()),
    "mg-wasting-comedication": ({"warning", "info"}, set()),
    "mg-declining": ({"info"}, set()),
}


@pytest.mark.parametrize(("topic", "emitted"), EMITTED.items())
def test_shipped_topics_have_a_summary_and_note_for_everything_the_rule_emits(
    topic: str, emitted: tuple[set[str], set[str]]
) -> None:
    indicators, notes = emitted
    compiled = shipped().topics[topic]
    assert indicators <= set(compiled.summaries)
    assert notes <= set(compiled.notes)
    assert compiled.topic.code == topic


# --- broken copies --------------------------------------------------------------------------


def copy_cards(tmp_path: Path) -> Path:
    target = tmp_path / "cards"
    shutil.copytree(CARDS, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


MG_CRITICAL = "mg_critical:    {mmol_per_l: 0.50, mg_per_dl: 1.2}"
DETAIL_HYPO = '{% if indicator == "critical" %}'


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
        lambda d: edit(
            d / "settings.yaml",
            "k_low:          {mmol_per_l: 3.5}",
            "k_low:          {mmol_per_l: -3.5}",
        ),
        "settings.yaml",
        ["thresholds.k_low.mmol_per_l"],
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
            d / "settings.yaml", MG_CRITICAL, "mg_critical:    {mmol_per_l: 0.80, mg_per_dl: 1.9}"
        ),
        "settings.yaml",
        ["thresholds", "mg_critical must be below mg_low"],
    ),
    (
        "mg-critical-twin-above-low-twin",
        lambda d: edit(
            d / "settings.yaml", MG_CRITICAL, "mg_critical:    {mmol_per_l: 0.50, mg_per_dl: 1.7}"
        ),
        "settings.yaml",
        ["thresholds", "mg_critical must be below mg_low"],
    ),
    (
        "window-wrong-type",
        lambda d: edit(d / "settings.yaml", "current_lab_days: 30", "current_lab_days: thirty"),
        "settings.yaml",
        ["windows.current_lab_days"],
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
        lambda d: edit(d / "topics" / "mg-declining.yaml", "{{ cni }}:", "{{ cni :"),
        "mg-declining.yaml",
        ["summary.info"],
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
        "topic-code-not-file-name",
        lambda d: edit(
            d / "topics" / "mg-declining.yaml", "code: mg-declining", "code: mg-falling"
        ),
        "mg-declining.yaml",
        ["code", "mg-falling"],
    ),
    (
        "unknown-source",
        lambda d: edit(
            d / "topics" / "mg-digoxin.yaml", 'sources: ["003", "004"]', 'sources: ["003", "999"]'
        ),
        "mg-digoxin.yaml",
        ["sources", "999"],
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
        "formulary-missing-entry",
        lambda d: edit(d / "formulary.yaml", "  tacrolimus_trough:", "  tacrolimus_level:"),
        "formulary.yaml",
        ["lab_orders.tacrolimus_trough"],
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
        "mg-rising.yaml",
        ["code"],
    ),
    (
        "missing-settings-file",
        lambda d: (d / "settings.yaml").unlink(),
        "settings.yaml",
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
    edit(
        cards / "settings.yaml",
        "mg_low:         {mmol_per_l: 0.66, mg_per_dl: 1.6}",
        "mg_low:         {mmol_per_l: 0.60, mg_per_dl: 1.45}",
    )
    content = load_site_content(cards)
    silent("hypomagnesemia", labs=[mg(1.5)], content=content)
    assert fired("hypomagnesemia", labs=[mg(1.4)], content=content).values["threshold"] == (
        "1.45 mg/dL"
    )
