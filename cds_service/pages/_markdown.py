"""``docs/clinical-reference.md``: every topic page in one Markdown file, generated from cards/."""

from __future__ import annotations

from collections.abc import Mapping

from ._model import TopicPageData
from ._text import blocks

REGENERATE = "cds-service docs --markdown docs/clinical-reference.md"


def _escape(text: str) -> str:
    """Content text shown as text: no HTML, no stray table cell breaks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cell(text: str) -> str:
    return _escape(text).replace("|", "\\|").replace("\n", " ")


def _text(value: str) -> list[str]:
    lines: list[str] = []
    for block in blocks(value):
        if block.kind == "ul":
            lines += [f"- {_escape(item)}" for item in block.items]
        else:
            lines.append(_escape(block.items[0]))
        lines.append("")
    return lines


def _topic(page: TopicPageData) -> list[str]:
    hti1 = page.hti1
    lines = [
        f"## {_escape(page.display)} (`{page.code}`)",
        "",
        f"Indicators: {', '.join(page.indicators)}"
        + ("" if page.enabled else "; switched off at this site")
        + ".",
        "",
    ]
    for title, value in (
        ("What it does", page.purpose),
        ("For whom", page.for_whom),
        ("When it fires", page.fires_when),
        ("What it advises", page.advises),
    ):
        lines += [f"### {title}", "", *_text(value)]
    lines += ["### Sources", ""]
    for source in page.sources:
        link = f" <{source.url}>" if source.url else ""
        lines.append(f"- **{source.key}**: {_escape(source.label)}{link}")
    lines += [
        "",
        "### Source attributes (ONC HTI-1)",
        "",
        "| attribute | value |",
        "|---|---|",
        f"| Bibliographic citation | {', '.join(s.key for s in page.sources)} (see Sources) |",
        f"| Developer | {_cell(hti1.developer)} |",
        f"| Funding source | {_cell(hti1.funding_source)} |",
        f"| Release date | {hti1.release_date.isoformat()} |",
        f"| Last revision date | {hti1.last_revision_date.isoformat()} |",
    ]
    for _key, label, use in hti1.uses_list():
        value = f"Yes. {use.how}" if use.used and use.how else "No"
        lines.append(f"| Uses {label.lower()} | {_cell(value)} |")
    lines.append("")
    return lines


def reference_markdown(pages: Mapping[str, TopicPageData]) -> str:
    """The whole reference; the same text for the same cards/, byte for byte."""
    listed = list(pages.values())
    version = listed[0].version
    lines = [
        "# Clinical reference",
        "",
        f"<!-- Generated from cards/ by `{REGENERATE}`: do not edit by hand. -->",
        "",
        "What each card topic does, for whom, when it fires with the thresholds of the shipped",
        "`cards/`, what it advises, its sources and its ONC HTI-1 source attributes. The running",
        "service serves the same pages, with the site's own content, at",
        "`GET /cds-services/topics/{code}`.",
        "",
        f"Content version {version.version}, released {version.released.isoformat()}, "
        f"fingerprint `{version.fingerprint}`.",
        "",
        "| topic | what it does |",
        "|---|---|",
    ]
    lines += [f"| [`{p.code}`](#{_anchor(p)}) | {_cell(p.purpose)} |" for p in listed]
    lines.append("")
    for page in listed:
        lines += _topic(page)
    return "\n".join(lines).rstrip("\n") + "\n"


def _anchor(page: TopicPageData) -> str:
    """GitHub's heading anchor for ``## {display} (`{code}`)``."""
    heading = f"{page.display} ({page.code})".lower()
    kept = "".join(ch for ch in heading if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")
