"""One topic's page as data: built from the loaded content, shown as HTML, JSON or Markdown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..content import Content, ContentVersion, Hti1Attributes

_WEB_SCHEMES = ("https://", "http://")


@dataclass(frozen=True, slots=True)
class SourceRef:
    key: str
    label: str
    url: str | None

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"key": self.key, "label": self.label}
        if self.url:
            found["url"] = self.url
        return found


@dataclass(frozen=True, slots=True)
class TopicPageData:
    code: str
    display: str
    enabled: bool
    indicators: tuple[str, ...]
    purpose: str
    for_whom: str
    fires_when: str
    advises: str
    # The bibliographic citation of the evidence (HTI-1), which includes every source the
    # topic's cards cite.
    sources: tuple[SourceRef, ...]
    hti1: Hti1Attributes
    version: ContentVersion

    def as_dict(self, url: str | None = None) -> dict[str, Any]:
        """The page as JSON: what ``Accept: application/json`` gets."""
        hti1 = self.hti1
        page: dict[str, Any] = {"code": self.code, "display": self.display}
        if url:
            page["url"] = url
        page |= {
            "enabled": self.enabled,
            "indicators": list(self.indicators),
            "purpose": self.purpose,
            "for_whom": self.for_whom,
            "fires_when": self.fires_when,
            "advises": self.advises,
            "sources": [source.as_dict() for source in self.sources],
            "hti1": {
                "citation": [source.key for source in self.sources],
                "developer": hti1.developer,
                "funding_source": hti1.funding_source,
                "release_date": hti1.release_date.isoformat(),
                "last_revision_date": hti1.last_revision_date.isoformat(),
                "uses": {
                    key: use.model_dump(exclude_none=True) for key, _label, use in hti1.uses_list()
                },
            },
            "content": self.version.as_dict(),
        }
        return page


def _web_url(url: str | None) -> str | None:
    """Only an http(s) URL becomes a link; anything else is shown as text, if at all."""
    return url if url and url.startswith(_WEB_SCHEMES) else None


def _refs(content: Content, keys: list[str]) -> tuple[SourceRef, ...]:
    return tuple(
        SourceRef(key, content.sources[key].label, _web_url(content.sources[key].url))
        for key in dict.fromkeys(keys)
    )


_INDICATOR_ORDER = ("critical", "warning", "info")


def topic_pages(content: Content) -> dict[str, TopicPageData]:
    """Every topic's page, in topic-code order."""
    pages: dict[str, TopicPageData] = {}
    for code in sorted(content.topics):
        topic = content.topics[code].topic
        text = content.governance.pages[code]
        hti1 = content.governance.hti1[code]
        pages[code] = TopicPageData(
            code=code,
            display=topic.display,
            enabled=topic.enabled,
            indicators=tuple(i for i in _INDICATOR_ORDER if i in topic.summary),
            purpose=text.purpose,
            for_whom=text.for_whom,
            fires_when=text.fires_when,
            advises=text.advises,
            sources=_refs(content, hti1.citation),
            hti1=hti1,
            version=content.governance.version,
        )
    return pages
