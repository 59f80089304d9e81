"""Content governance: the version and fingerprint of cards/, the HTI-1 source attributes, and
the ``page:`` texts rendered with the live settings. Broken copies fail loading, naming file and
field."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from cds_service.content import USE_ATTRIBUTES, ContentError
from cds_service.profile import load_site_content
from tests.facts.builders import CARDS

# --- the shipped content --------------------------------------------------------------------


def test_shipped_content_names_its_version_and_a_fingerprint() -> None:
    version = load_site_content(CARDS).governance.version
    assert version.version == "2.0.0"
    assert version.released == date(2026, 12, 3)
    assert len(version.fingerprint) == 16
    int(version.fingerprint, 16)  # hex
    assert version.as_dict() == {
        "version": "2.0.0",
        "released": "2026-12-03",
        "fingerprint": version.fingerprint,
    }


def test_every_shipped_topic_has_complete_hti1_attributes_and_a_page() -> None:
    content = load_site_content(CARDS)
    assert set(content.governance.hti1) == set(content.topics) == set(content.governance.pages)
    for code, attributes in content.governance.hti1.items():
        assert attributes.developer and attributes.funding_source
        assert attributes.release_date <= attributes.last_revision_date
        assert set(content.topics[code].cited) <= set(attributes.citation)
        uses = dict((key, use) for key, _label, use in attributes.uses_list())
        assert list(uses) == list(USE_ATTRIBUTES)
        for key in ("race", "ethnicity", "language", "sexual_orientation", "gender_identity"):
            assert uses[key].used is False, (code, key)
        assert not uses["social_determinants_of_health"].used
        assert not uses["health_status_assessments"].used


KIDNEY_TOPICS = (
    "hypomagnesemia",
    "mg-digoxin",
    "mg-refractory-hypokalemia",
    "mg-refractory-hypocalcemia",
    "mg-wasting-comedication",
)


@pytest.mark.parametrize("code", KIDNEY_TOPICS)
def test_sex_and_date_of_birth_are_declared_where_the_ckd_epi_egfr_feeds_the_card(
    code: str,
) -> None:
    uses = load_site_content(CARDS).governance.hti1[code].uses
    assert uses.sex.used and uses.sex.how
    assert "CKD-EPI 2021" in uses.sex.how and "no eGFR is reported" in uses.sex.how
    assert uses.date_of_birth.used and uses.date_of_birth.how
    assert "CKD-EPI 2021" in uses.date_of_birth.how


def test_date_of_birth_is_declared_for_paediatric_dosing_where_a_dose_is_given() -> None:
    how = load_site_content(CARDS).governance.hti1["hypomagnesemia"].uses.date_of_birth.how
    assert how is not None and "under 18" in how and "paediatric" in how


def test_page_texts_state_the_live_thresholds() -> None:
    pages = load_site_content(CARDS).governance.pages
    assert "below 0.50 mmol/L (1.2 mg/dL)" in pages["hypomagnesemia"].fires_when
    assert "below 0.66 mmol/L (1.6 mg/dL)" in pages["hypomagnesemia"].fires_when
    assert "for 30 days" in pages["hypomagnesemia"].fires_when
    assert "20% or more" in pages["mg-declining"].fires_when
    assert "last 42 days" in pages["mg-monitoring-gap"].fires_when
    for page in pages.values():
        assert "{{" not in page.fires_when + page.advises + page.purpose + page.for_whom


# --- broken copies --------------------------------------------------------------------------


def copy_cards(tmp_path: Path) -> Path:
    target = tmp_path / "cards"
    shutil.copytree(CARDS, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def drop_lines(path: Path, *starts: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not line.lstrip().startswith(starts)]
    assert len(kept) < len(lines)
    path.write_text("".join(kept), encoding="utf-8")


FUNDING = (
    "  funding_source: >-\n"
    "    Developed and maintained by the cds-service project; no industry, manufacturer or grant\n"
    "    funding of the intervention's development or technical implementation is declared.\n"
)
HYPO_PAGE = "    - Critical: the current Mg is below {{ thresholds.mg_critical }} and"

BROKEN: list[tuple[str, Callable[[Path], object], str, list[str]]] = [
    (
        "no-content-version",
        lambda d: drop_lines(d / "settings.yaml", "content_version:"),
        "settings.yaml",
        ["content_version", "Field required"],
    ),
    (
        "content-version-with-spaces",
        lambda d: edit(d / "settings.yaml", 'content_version: "2.0.0"', 'content_version: "two 0"'),
        "settings.yaml",
        ["content_version", "pattern"],
    ),
    (
        "released-not-a-date",
        lambda d: edit(d / "settings.yaml", "released: 2026-12-03", "released: soon"),
        "settings.yaml",
        ["released"],
    ),
    (
        "hti1-file-missing",
        lambda d: (d / "hti1.yaml").unlink(),
        "hti1.yaml",
        ["file is missing"],
    ),
    (
        "hti1-topic-entry-missing",
        lambda d: edit(d / "hti1.yaml", "  mg-declining:\n", "  mg-declinning:\n"),
        "hti1.yaml",
        ["topics.mg-declining", "missing"],
    ),
    (
        "hti1-developer-missing",
        lambda d: edit(d / "hti1.yaml", "  developer: >-", "  developper: >-"),
        "hti1.yaml",
        ["developper", "Extra inputs"],
    ),
    (
        "hti1-funding-source-missing-everywhere",
        lambda d: edit(d / "hti1.yaml", FUNDING, ""),
        "hti1.yaml",
        ["funding_source", "Field required"],
    ),
    (
        "hti1-use-attribute-missing",
        lambda d: drop_lines(d / "hti1.yaml", "language: {used: false}"),
        "hti1.yaml",
        ["uses.language", "Field required"],
    ),
    (
        "hti1-used-without-how",
        lambda d: edit(
            d / "hti1.yaml",
            "social_determinants_of_health: {used: false}",
            "social_determinants_of_health: {used: true}",
        ),
        "hti1.yaml",
        ["uses.social_determinants_of_health", "how is required"],
    ),
    (
        "hti1-unknown-use-attribute",
        lambda d: edit(
            d / "hti1.yaml", "race: {used: false}", "race: {used: false}\n    zodiac: {used: false}"
        ),
        "hti1.yaml",
        ["zodiac", "unknown attributes"],
    ),
    (
        "hti1-citation-unknown-source",
        lambda d: edit(
            d / "hti1.yaml",
            'citation: [tac-mg-2006, "000"]',
            'citation: [tac-mg-2006, "000", "999"]',
        ),
        "hti1.yaml",
        ["topics.mg-declining.citation", "999"],
    ),
    (
        "hti1-citation-omits-a-source-the-topic-cites",
        lambda d: edit(d / "hti1.yaml", 'citation: [tac-mg-2006, "000"]', 'citation: ["000"]'),
        "hti1.yaml",
        ["topics.mg-declining.citation", "tac-mg-2006", "topics/mg-declining.yaml"],
    ),
    (
        "hti1-revised-before-release",
        lambda d: edit(
            d / "hti1.yaml", "last_revision_date: 2026-12-03", "last_revision_date: 2026-01-01"
        ),
        "hti1.yaml",
        ["last_revision_date is before release_date"],
    ),
    (
        "page-missing",
        lambda d: edit(d / "topics" / "mg-digoxin.yaml", "\npage:\n", "\npages:\n"),
        "mg-digoxin.yaml",
        ["page", "Field required"],
    ),
    (
        "page-unknown-threshold",
        lambda d: edit(
            d / "topics" / "hypomagnesemia.yaml",
            HYPO_PAGE,
            HYPO_PAGE.replace("mg_critical", "mg_critcal"),
        ),
        "hypomagnesemia.yaml",
        ["page.fires_when", "mg_critcal"],
    ),
    (
        "page-jinja-syntax",
        lambda d: edit(
            d / "topics" / "hypomagnesemia.yaml", HYPO_PAGE, HYPO_PAGE.replace("}} and", "} and")
        ),
        "hypomagnesemia.yaml",
        ["page.fires_when", "line"],
    ),
]


@pytest.mark.parametrize(
    ("breaker", "file", "words"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN]
)
def test_broken_copy_fails_loading_naming_file_field_and_reason(
    tmp_path: Path, breaker: Callable[[Path], object], file: str, words: list[str]
) -> None:
    cards = copy_cards(tmp_path)
    breaker(cards)
    with pytest.raises(ContentError) as raised:
        load_site_content(cards)
    message = str(raised.value)
    assert file in message
    for word in words:
        assert word in message, message


def test_an_entry_for_a_topic_not_present_is_allowed(tmp_path: Path) -> None:
    """hti1.yaml may describe a topic before its file lands; only present topics are required."""
    cards = copy_cards(tmp_path)
    edit(cards / "hti1.yaml", "topics:\n", "topics:\n  a-future-topic:\n    citation: ['003']\n")
    assert "a-future-topic" not in load_site_content(cards).governance.hti1


def test_a_topic_entry_overrides_the_defaults_attribute_by_attribute(tmp_path: Path) -> None:
    cards = copy_cards(tmp_path)
    edit(
        cards / "hti1.yaml",
        '    citation: [tac-mg-2006, "000"]\n',
        '    citation: [tac-mg-2006, "000"]\n    funding_source: Site grant 42\n'
        "    uses: {language: {used: true, how: The card is shown in the user's language.}}\n",
    )
    content = load_site_content(cards)
    declining, other = (
        content.governance.hti1["mg-declining"],
        content.governance.hti1["mg-digoxin"],
    )
    assert declining.funding_source == "Site grant 42"
    assert declining.uses.language.used and not declining.uses.race.used
    assert other.funding_source != "Site grant 42" and not other.uses.language.used


# --- the fingerprint --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        ("topics/mg-declining.yaml", "recheck sooner", "recheck soonex"),
        ("settings.yaml", "current_lab_days: 30", "current_lab_days: 31"),
        ("hti1.yaml", "release_date: 2026-11-23", "release_date: 2026-11-22"),
        ("sources.yaml", "Transplant Proc 2006", "Transplant Proc 2007"),
        ("formulary.yaml", "Order a serum magnesium", "Order a serum magnesiun"),
    ],
)
def test_a_one_character_change_changes_the_fingerprint_not_the_version(
    tmp_path: Path, file: str, old: str, new: str
) -> None:
    shipped = load_site_content(CARDS).governance.version
    cards = copy_cards(tmp_path)
    assert (
        load_site_content(cards).governance.version == shipped
    )  # a byte-identical copy: the same fingerprint
    assert len(old) == len(new) and sum(a != b for a, b in zip(old, new, strict=True)) == 1
    edit(cards / file, old, new)
    changed = load_site_content(cards).governance.version
    assert changed.fingerprint != shipped.fingerprint
    assert (changed.version, changed.released) == (shipped.version, shipped.released)


def test_files_the_loader_does_not_read_do_not_change_the_fingerprint(tmp_path: Path) -> None:
    cards = copy_cards(tmp_path)
    (cards / "NOTES.md").write_text("committee minutes", encoding="utf-8")
    (cards / "topics" / "draft.yaml.bak").write_text("x", encoding="utf-8")
    assert (
        load_site_content(cards).governance.version == load_site_content(CARDS).governance.version
    )


def test_renaming_a_file_changes_the_fingerprint(tmp_path: Path) -> None:
    """The relative paths are hashed too: the same bytes under another name are other content."""
    from cds_service.content._governance import fingerprint

    one, two = tmp_path / "one", tmp_path / "two"
    for root, name in ((one, "a.yaml"), (two, "b.yaml")):
        root.mkdir()
        (root / name).write_text("x: 1\n", encoding="utf-8")
    assert fingerprint([("a.yaml", one / "a.yaml")]) != fingerprint([("b.yaml", two / "b.yaml")])


def test_the_page_follows_a_threshold_changed_in_a_copy(tmp_path: Path) -> None:
    cards = copy_cards(tmp_path)
    edit(
        cards / "settings.yaml",
        "mg_critical:         {mmol_per_l: 0.50, mg_per_dl: 1.2}",
        "mg_critical:         {mmol_per_l: 0.45, mg_per_dl: 1.1}",
    )
    fires = load_site_content(cards).governance.pages["hypomagnesemia"].fires_when
    assert "below 0.45 mmol/L (1.1 mg/dL)" in fires
    assert "0.50 mmol/L" not in fires
