"""``cds-service docs --out DIR``: the topic pages as a static site (no server needed)."""

from __future__ import annotations

from pathlib import Path

from ..content import Content
from ._html import index_html, topic_html
from ._model import topic_pages


def write_site(content: Content, out: Path) -> list[Path]:
    """``index.html`` and ``topics/<code>.html`` under ``out``; returns the files written."""
    pages = topic_pages(content)
    topics_dir = out / "topics"
    topics_dir.mkdir(parents=True, exist_ok=True)
    written = []
    index = out / "index.html"
    index.write_text(index_html(pages, href=lambda code: f"topics/{code}.html"), encoding="utf-8")
    written.append(index)
    for code, page in pages.items():
        path = topics_dir / f"{code}.html"
        path.write_text(topic_html(page, index_href="../index.html"), encoding="utf-8")
        written.append(path)
    return written
