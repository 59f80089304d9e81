"""Topic pages: what each card topic does, for whom, when it fires (with this site's live
thresholds), what it advises, its sources and its HTI-1 source attributes.

Served at ``GET /cds-services/topics/{code}`` (HTML, or JSON), written as a static site by
``cds-service docs --out DIR``, and as ``docs/clinical-reference.md``.
"""

from ._html import index_html, topic_html
from ._markdown import reference_markdown
from ._model import SourceRef, TopicPageData, topic_pages
from ._site import write_site

__all__ = [
    "SourceRef",
    "TopicPageData",
    "index_html",
    "reference_markdown",
    "topic_html",
    "topic_pages",
    "write_site",
]
