"""Topic pages over HTTP, as a static site and as docs/clinical-reference.md."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.app._topics import wants_json
from cds_service.cli import main
from cds_service.content import USE_ATTRIBUTES, Content
from cds_service.pages import reference_markdown, topic_pages
from cds_service.pages._markdown import REGENERATE
from cds_service.pipeline import CdsService
from cds_service.profile import load_site_content
from cds_service.trust import AuthenticationFailed, VerifiedCaller

from .htmlcheck import check_html, visible_text
from .settings_support import make_settings
from .support import CARDS, NOW, REPO, RefusingFhirClient, hook_request, magnesium

BASE = "https://cds.example.org/mg"
TOPICS = sorted(load_site_content(CARDS).topics)
JSON = {"Accept": "application/json"}


def client_for(content: Content | None = None, **kwargs: Any) -> TestClient:
    service = CdsService(
        settings=make_settings(public_base_url=BASE),
        content=content or load_site_content(CARDS),
        store=None,
        fhir_client=RefusingFhirClient(),
        clock=lambda: NOW,
    )
    return TestClient(create_app(service, **kwargs))


def path_of(url: str) -> str:
    assert url.startswith(BASE + "/"), url
    return urlsplit(url).path.removeprefix(urlsplit(BASE).path)


def threshold_text(raw: dict[str, Any]) -> str:
    """What a page must print for a threshold of settings.yaml, computed from the YAML itself:
    lab-sheet precision (0.50 mmol/L, 3.0 mmol/L, 1.2 mg/dL) with the mg/dL twin."""

    def lab(value: float, at_least: int) -> str:
        text = repr(float(value))
        return text if len(text.split(".")[1]) >= at_least else f"{value:.{at_least}f}"

    mmol = raw["mmol_per_l"]
    text = f"{lab(mmol, 2 if mmol < 1 else 1)} mmol/L"
    if raw.get("mg_per_dl") is not None:
        text += f" ({lab(raw['mg_per_dl'], 1)} mg/dL)"
    return text


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", TOPICS)
def test_each_topic_page_is_valid_html_with_every_section(code: str) -> None:
    content = load_site_content(CARDS)
    response = client_for(content).get(f"/cds-services/topics/{code}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    checker = check_html(response.text)
    assert {"purpose", "for-whom", "fires-when", "advises", "sources", "hti1"} <= checker.ids
    assert {f"uses-{key}" for key in USE_ATTRIBUTES} <= checker.ids
    text = visible_text(response.text)
    topic = content.topics[code].topic
    assert topic.display in checker.title
    page = content.governance.pages[code]
    for part in (page.purpose, page.fires_when, page.advises):
        assert " ".join(part.replace("- ", "").split())[:60] in text
    hti1 = content.governance.hti1[code]
    for source in hti1.citation:
        assert content.sources[source].label in text
        url = content.sources[source].url
        if url:
            assert url in checker.links
    assert hti1.developer in text and hti1.funding_source in text
    assert f"Release date {hti1.release_date.isoformat()}" in text
    assert f"Last revision date {hti1.last_revision_date.isoformat()}" in text
    assert content.governance.version.fingerprint in text
    assert f"{BASE}/cds-services/topics" in checker.links


def test_the_page_states_the_thresholds_of_settings_yaml() -> None:
    settings = yaml.safe_load((CARDS / "settings.yaml").read_text(encoding="utf-8"))
    t, w = settings["thresholds"], settings["windows"]
    client = client_for()
    hypo = visible_text(client.get("/cds-services/topics/hypomagnesemia").text)
    for name in ("mg_critical", "mg_low", "mg_cni_target"):
        assert f"below {threshold_text(t[name])}" in hypo
    assert f"current for {w['current_lab_days']} days" in hypo
    assert f"below {t['egfr_iv_cap']:g} mL/min/1.73 m²" in hypo
    k = visible_text(client.get("/cds-services/topics/mg-refractory-hypokalemia").text)
    assert f"K is below {threshold_text(t['k_low'])}" in k
    assert f"K is below {threshold_text(t['k_critical'])}" in k
    gap = visible_text(client.get("/cds-services/topics/mg-monitoring-gap").text)
    assert f"in the last {w['monitoring_gap_days']} days" in gap
    declining = client.get("/cds-services/topics/mg-declining", headers=JSON).json()
    assert f"{t['mg_decline_fraction'] * 100:g}% or more" in declining["fires_when"]


def test_changing_a_threshold_in_a_copy_changes_the_page(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    shutil.copytree(CARDS, cards)
    settings = cards / "settings.yaml"
    settings.write_text(
        settings.read_text(encoding="utf-8")
        .replace("{mmol_per_l: 0.66, mg_per_dl: 1.6}", "{mmol_per_l: 0.62, mg_per_dl: 1.5}")
        .replace("monitoring_gap_days: 42", "monitoring_gap_days: 35"),
        encoding="utf-8",
    )
    before = visible_text(client_for().get("/cds-services/topics/hypomagnesemia").text)
    client = client_for(load_site_content(cards))
    after = visible_text(client.get("/cds-services/topics/hypomagnesemia").text)
    assert "below 0.66 mmol/L (1.6 mg/dL)" in before
    assert "below 0.62 mmol/L (1.5 mg/dL)" in after and "0.66 mmol/L" not in after
    gap = client.get("/cds-services/topics/mg-monitoring-gap", headers=JSON).json()
    assert "in the last 35 days" in gap["fires_when"]


def test_json_on_accept_application_json() -> None:
    content = load_site_content(CARDS)
    response = client_for(content).get("/cds-services/topics/mg-digoxin", headers=JSON)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    page = response.json()
    assert page["code"] == "mg-digoxin"
    assert page["url"] == f"{BASE}/cds-services/topics/mg-digoxin"
    assert page["fires_when"] == content.governance.pages["mg-digoxin"].fires_when
    assert page["indicators"] == ["warning"]
    assert [s["key"] for s in page["sources"]] == content.governance.hti1["mg-digoxin"].citation
    assert page["hti1"]["citation"] == content.governance.hti1["mg-digoxin"].citation
    assert list(page["hti1"]["uses"]) == list(USE_ATTRIBUTES)
    assert page["hti1"]["uses"]["sex"]["used"] is True
    assert "CKD-EPI 2021" in page["hti1"]["uses"]["sex"]["how"]
    assert page["hti1"]["uses"]["race"] == {"used": False}
    assert page["content"] == content.governance.version.as_dict()


def test_the_json_page_says_whether_the_topic_is_enabled_and_the_content_version(
    tmp_path: Path,
) -> None:
    cards = tmp_path / "cards"
    shutil.copytree(CARDS, cards)
    topic = cards / "topics" / "mg-declining.yaml"
    text = topic.read_text(encoding="utf-8")
    assert "\nenabled: true\n" in text
    topic.write_text(text.replace("\nenabled: true\n", "\nenabled: false\n"), encoding="utf-8")
    content = load_site_content(cards)
    client = client_for(content)
    off = client.get("/cds-services/topics/mg-declining", headers=JSON).json()
    on = client.get("/cds-services/topics/mg-digoxin", headers=JSON).json()
    assert (off["enabled"], on["enabled"]) == (False, True)
    version = content.governance.version.as_dict()
    assert off["content"] == on["content"] == version
    assert set(version) == {"version", "released", "fingerprint"}
    assert (
        version["version"]
        == yaml.safe_load((cards / "settings.yaml").read_text())["content_version"]
    )


def test_the_index_lists_every_topic() -> None:
    client = client_for()
    html = client.get("/cds-services/topics")
    checker = check_html(html.text)
    assert {f"{BASE}/cds-services/topics/{code}" for code in TOPICS} <= set(checker.links)
    listed = client.get("/cds-services/topics", headers=JSON).json()
    assert sorted(listed["topics"]) == TOPICS


@pytest.mark.parametrize(
    ("accept", "json"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        ("text/html", False),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
        ("application/json", True),
        ("application/json, */*;q=0.5", True),
        ("application/fhir+json", True),
        ("text/html;q=0.5, application/json", True),
        ("application/json;q=0.2, text/html", False),
        ("application/json;q=0", False),
        ("application/json;q=bad", False),
    ],
)
def test_content_negotiation(accept: str | None, json: bool) -> None:
    assert wants_json(accept) is json


def test_an_unknown_topic_is_a_404_outcome() -> None:
    for headers in ({}, JSON):
        response = client_for().get("/cds-services/topics/no-such-topic", headers=headers)
        assert response.status_code == 404
        assert response.json()["issue"][0]["code"] == "not-found"


def test_pages_need_no_token_when_authentication_is_on() -> None:
    """A clinician opens source.url in a browser, which sends no token; no patient data here."""

    def refuse(_header: str | None, _audience: str) -> VerifiedCaller:
        raise AuthenticationFailed("no token")

    client = client_for(authenticator=refuse)
    assert client.get("/cds-services").status_code == 401
    assert client.get("/cds-services/topics/hypomagnesemia").status_code == 200
    assert client.get("/cds-services/topics").status_code == 200


# -- discovery and cards ---------------------------------------------------------------------


def test_discovery_lists_the_topic_pages_and_the_content_version() -> None:
    content = load_site_content(CARDS)
    services = client_for(content).get("/cds-services").json()["services"]
    for service in services:
        extension = service["extension"]
        assert extension["cds-service.content"] == content.governance.version.as_dict()
        assert extension["cds-service.topics"] == {
            code: f"{BASE}/cds-services/topics/{code}" for code in TOPICS
        }


def test_a_cards_source_url_is_its_topic_page() -> None:
    client = client_for()
    response = client.post(
        "/cds-services/mg-patient-view", json=hook_request(observations=[magnesium(1.1)])
    )
    (card,) = response.json()["cards"]
    url = card["source"]["url"]
    assert url == f"{BASE}/cds-services/topics/hypomagnesemia"
    page = client.get(path_of(url))
    assert page.status_code == 200
    assert "<h1>Low serum magnesium</h1>" in page.text


# -- escaping --------------------------------------------------------------------------------


def test_every_content_text_is_escaped(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    shutil.copytree(CARDS, cards)
    topic = cards / "topics" / "mg-declining.yaml"
    hostile = "<script>alert(1)</script> & \"quoted\" <b onmouseover='x'>bold</b>"
    topic.write_text(
        topic.read_text(encoding="utf-8").replace(
            "  purpose: >-\n", f"  purpose: >-\n    {hostile}\n", 1
        ),
        encoding="utf-8",
    )
    sources = cards / "sources.yaml"
    sources.write_text(
        sources.read_text(encoding="utf-8").replace(
            "https://pubmed.ncbi.nlm.nih.gov/16797291/", "javascript:alert(2)"
        ),
        encoding="utf-8",
    )
    client = client_for(load_site_content(cards))
    for path in ("/cds-services/topics/mg-declining", "/cds-services/topics"):
        html = client.get(path).text
        check_html(html)  # no <script>, no on* attribute, no javascript: link
        assert "<script>" not in html and "javascript:" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;quoted&#34;" in html
        assert hostile in visible_text(html)
    page = client.get("/cds-services/topics/mg-declining", headers=JSON).json()
    assert hostile in page["purpose"]
    declining = {source["key"]: source for source in page["sources"]}
    assert "url" not in declining["tac-mg-2006"]  # not a web link: shown as text only


# -- the static site and the Markdown reference ----------------------------------------------


def test_docs_writes_the_pages_as_a_static_site(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "site"
    assert main(["docs", "--out", str(out)]) == 0
    assert "12 pages (content version 2.0.0)" in capsys.readouterr().out
    index = (out / "index.html").read_text(encoding="utf-8")
    links = check_html(index).links
    assert [f"topics/{code}.html" for code in TOPICS] == [
        link for link in links if link.startswith("topics/")
    ]
    http = client_for()
    for code in TOPICS:
        static = (out / "topics" / f"{code}.html").read_text(encoding="utf-8")
        assert "../index.html" in check_html(static).links
        served = http.get(f"/cds-services/topics/{code}").text
        # The same page: only the link back to the index differs.
        assert static.replace("../index.html", "INDEX") == served.replace(
            f"{BASE}/cds-services/topics", "INDEX"
        )


def test_docs_needs_an_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["docs"]) == 2
    assert "--out" in capsys.readouterr().err


def test_docs_refuses_broken_content(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cards = tmp_path / "cards"
    shutil.copytree(CARDS, cards)
    (cards / "hti1.yaml").unlink()
    assert main(["docs", "--cards", str(cards), "--out", str(tmp_path / "site")]) == 2
    assert "hti1.yaml: file is missing" in capsys.readouterr().err
    assert not (tmp_path / "site").exists()


def test_the_clinical_reference_in_the_repo_is_in_sync_with_cards() -> None:
    expected = reference_markdown(topic_pages(load_site_content(CARDS)))
    committed = (REPO / "docs" / "clinical-reference.md").read_text(encoding="utf-8")
    assert committed == expected, f"docs/clinical-reference.md is stale: run `{REGENERATE}`"


def test_the_markdown_reference_names_every_topic_and_attribute(tmp_path: Path) -> None:
    out = tmp_path / "reference.md"
    assert main(["docs", "--markdown", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    content = load_site_content(CARDS)
    assert content.governance.version.fingerprint in text
    for code in TOPICS:
        assert f"(`{code}`)" in text
    for label in ("Bibliographic citation", "Developer", "Funding source", "Release date"):
        assert text.count(f"| {label} |") == len(TOPICS)
    # The six topics whose text depends on kidney function (eGFR from age) or on age itself.
    assert text.count("| Uses date of birth | Yes.") == 6
