"""End to end in headless Chromium: the demo's card viewer renders the service's cards.

Debian's ``chromium`` is started by the test; the test is skipped, saying why, when it is not
installed or cannot start here. The screenshot is kept as ``test-artifacts/demo-viewer.png``.
"""

from __future__ import annotations

import html
import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from cds_service.demo import DemoData, DemoPatient

from .support import REPO, demo_process, free_port

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
STATIC = REPO / "cds_service" / "demo" / "static"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

pytestmark = pytest.mark.browser


def _chromium(tmp_path: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Skip unless Chromium is installed and can render a page here."""
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    tmp = tmp_path_factory.mktemp("chromium-probe")
    try:
        probe = _chromium(tmp, "--dump-dom", "data:text/html,<p>probe-ok</p>", timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"{CHROMIUM} cannot start: {exc}")
    if probe.returncode != 0 or "probe-ok" not in probe.stdout:
        tail = probe.stderr.strip().splitlines()[-3:]
        pytest.skip(f"{CHROMIUM} cannot start (exit {probe.returncode}): {' | '.join(tail)}")
    return CHROMIUM


def _viewer_patient(data: DemoData) -> DemoPatient:
    """A patient-view demo patient with a critical card and as many cards as possible."""
    views = [p for p in data.patients if p.hook == "patient-view"] or data.patients
    assert views, "no demo scenarios in fixtures/scenarios/"
    return max(views, key=lambda p: (len(p.topics), p.scenario.startswith("icu")))


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def _expected_cards(base: str, patient: DemoPatient) -> list[dict[str, Any]]:
    request = requests.get(f"{base}/demo/requests/{patient.patient_id}/patient-view", timeout=10)
    request.raise_for_status()
    response = requests.post(
        f"{base}/cds-services/mg-patient-view", json=request.json(), timeout=10
    )
    response.raise_for_status()
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


def test_the_card_viewer_renders_the_cards(chromium: Path, tmp_path: Path) -> None:
    patient = _viewer_patient(DemoData.load())
    with demo_process(tmp_path, free_port()) as (base, _process):
        cards = _expected_cards(base, patient)
        assert cards, f"{patient.scenario} gave no cards"
        url = f"{base}/demo/viewer?patient={patient.patient_id}&hook=patient-view"
        budget = "--virtual-time-budget=5000"
        dom = _chromium(tmp_path, "--window-size=1200,1600", budget, "--dump-dom", url)
        assert dom.returncode == 0, dom.stderr[-2000:]
        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = ARTIFACTS / "demo-viewer.png"
        screenshot.unlink(missing_ok=True)
        shot = _chromium(
            tmp_path, "--window-size=1200,1600", budget, f"--screenshot={screenshot}", url
        )
        assert shot.returncode == 0, shot.stderr[-2000:]

    page = dom.stdout
    assert 'data-state="done"' in page, page[-3000:]
    assert page.count('<article class="card indicator-') == len(cards)
    for card in cards:
        assert html.escape(card["summary"], quote=False) in page, card["summary"]
        assert f'class="card indicator-{card["indicator"]}"' in page
        assert f'data-topic="{card["source"]["topic"]["code"]}"' in page
        for suggestion in card.get("suggestions", []):
            assert html.escape(suggestion["label"], quote=False) in page
    # The detail Markdown is rendered, not shown as source.
    details = "".join(card.get("detail", "") for card in cards)
    if "|---|" in details:
        assert "<table>" in page and "<th>Result</th>" in page
    if "**" in details:
        assert "<strong>" in page
    if "\n- " in details:
        assert "<ul><li>" in page
    assert screenshot.exists()
    assert screenshot.stat().st_size > 20_000, "the screenshot looks blank"
    assert _png_size(screenshot) == (1200, 1600)


def test_the_markdown_renderer_formats_and_escapes(chromium: Path, tmp_path: Path) -> None:
    """The viewer's Markdown renderer, run in Chromium on a card detail with hostile input."""
    detail = (
        "| Result | Value |\n|---|---|\n| Mg | 0.45 mmol/L |\n\n"
        "**Severe** and *slow*: see [the source](https://example.org/a_b?x=1&y=2).\n\n"
        "- one `code`\n- two\n\n1. first\n2. second\n\n"
        "<img src=x onerror=alert(1)> [bad](javascript:alert(1)) <script>alert(2)</script>"
    )
    literal = json.dumps(detail).replace("</", "<\\/")  # keep the page's own script intact
    page = tmp_path / "markdown.html"
    page.write_text(
        "<!doctype html><html><body><div id='out'></div>"
        f"<script src='{(STATIC / 'markdown.js').as_uri()}'></script>"
        f"<script>document.getElementById('out').innerHTML = CdsMarkdown.render({literal});"
        "</script></body></html>"
    )
    result = _chromium(tmp_path, "--allow-file-access-from-files", "--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout.split('<div id="out">', 1)[1].split("</div>", 1)[0]
    assert "<table><thead><tr><th>Result</th><th>Value</th></tr></thead>" in out
    assert "<td>0.45 mmol/L</td>" in out
    assert "<strong>Severe</strong>" in out and "<em>slow</em>" in out
    assert '<a href="https://example.org/a_b?x=1&amp;y=2" target="_blank"' in out
    assert "<ul><li>one <code>code</code></li><li>two</li></ul>" in out
    assert "<ol><li>first</li><li>second</li></ol>" in out
    # Hostile input stays text: no element, no handler, no javascript: link.
    assert "<img" not in out and "<script" not in out
    assert "&lt;img src=x onerror=alert(1)&gt;" in out
    assert "javascript:" not in out.replace("(javascript:alert(1))", "")
    assert 'href="javascript' not in out
