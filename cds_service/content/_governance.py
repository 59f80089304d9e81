"""What a committee needs to govern ``cards/``: which content this is, and what its pages say.

``ContentVersion`` names a release of the content: the site's ``content_version`` and
``released`` date from ``settings.yaml``, and a fingerprint of every file loaded, so two
deployments that claim the same version can be told apart if their files differ by one byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel

from ._errors import ContentError
from ._hti1 import Hti1Attributes, resolve_hti1
from ._schema import SiteSettings, Threshold, TopicPage

FINGERPRINT_CHARS = 16


@dataclass(frozen=True, slots=True)
class ContentVersion:
    version: str
    released: date
    fingerprint: str

    def as_dict(self) -> dict[str, str]:
        """``{"version", "released", "fingerprint"}``: what discovery, cards and audit carry."""
        return {
            "version": self.version,
            "released": self.released.isoformat(),
            "fingerprint": self.fingerprint,
        }


def content_files(directory: Path, overlays: Sequence[Path] = ()) -> list[tuple[str, Path]]:
    """Every file the loader reads, each with the name it is fingerprinted under: the YAML files
    of ``cards/`` and ``cards/topics/``, then those of each overlay folder (``overlay-1/...``)."""
    found: list[tuple[str, Path]] = []
    for index, folder in enumerate((directory, *overlays)):
        prefix = f"overlay-{index}/" if index else ""
        paths = [*folder.glob("*.yaml"), *(folder / "topics").glob("*.yaml")]
        found += [(prefix + path.relative_to(folder).as_posix(), path) for path in paths]
    return sorted(found)


def fingerprint(files: Iterable[tuple[str, Path]]) -> str:
    """SHA-256 over each file's name and bytes, in name order; the first 16 hex characters."""
    digest = hashlib.sha256()
    for relative, path in sorted(files):
        name = relative.encode()
        data = path.read_bytes()
        # Lengths first, so no two different file sets can hash the same byte stream.
        digest.update(b"%d:%s%d:" % (len(name), name, len(data)))
        digest.update(data)
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def _number(value: float) -> str:
    return f"{value:g}"


def _lab_number(value: float, *, at_least: int) -> str:
    """A threshold as lab sheets print it: ``0.50``, ``3.0``, ``2.12`` (never ``0.5`` or ``3``)."""
    text = _number(value)
    decimals = len(text.partition(".")[2])
    return text if decimals >= at_least or "e" in text else f"{value:.{at_least}f}"


@dataclass(frozen=True, slots=True)
class ThresholdText:
    """A threshold as a page prints it: ``0.5 mmol/L (1.2 mg/dL)``; ``.mmol`` and ``.mg_dl``
    alone."""

    mmol: str
    mg_dl: str | None

    def __str__(self) -> str:
        return f"{self.mmol} ({self.mg_dl})" if self.mg_dl else self.mmol


def _page_value(value: Any) -> Any:
    if isinstance(value, Threshold):
        mmol = _lab_number(value.mmol_per_l, at_least=2 if value.mmol_per_l < 1 else 1)
        mg_dl = value.mg_per_dl
        return ThresholdText(
            f"{mmol} mmol/L",
            f"{_lab_number(mg_dl, at_least=1)} mg/dL" if mg_dl is not None else None,
        )
    if isinstance(value, BaseModel):
        return {name: _page_value(item) for name, item in value}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _number(value)
    return value


def page_values(settings: SiteSettings) -> dict[str, Any]:
    """What a topic page template may name: each section of ``settings.yaml`` (``thresholds``,
    ``windows``, ...) by its keys, e.g. ``{{ thresholds.mg_low }}``, ``{{ windows.trend_days }}``.

    A lab threshold prints with its units and twin (``0.66 mmol/L (1.6 mg/dL)``; ``.mmol`` and
    ``.mg_dl`` alone); a plain number prints as a number, and ``| percent`` turns a fraction into
    a percentage.
    """
    return {name: _page_value(value) for name, value in settings if isinstance(value, BaseModel)}


def percent(value: Any) -> str:
    """``0.2`` → ``20%`` (a filter for page templates)."""
    return f"{_number(float(value) * 100)}%"


@dataclass(frozen=True, slots=True)
class PageText:
    """A topic page's texts, rendered from ``page:`` with the live settings."""

    purpose: str
    for_whom: str
    fires_when: str
    advises: str

    def as_dict(self) -> Mapping[str, str]:
        return {
            "purpose": self.purpose,
            "for_whom": self.for_whom,
            "fires_when": self.fires_when,
            "advises": self.advises,
        }


_PAGE_ENV = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True
)
_PAGE_ENV.filters["percent"] = percent


def render_page(path: Path, page: TopicPage, values: Mapping[str, Any]) -> PageText:
    """The ``page:`` texts rendered with the live settings; an unknown name fails loading."""
    texts: dict[str, str] = {}
    for name, source in page:
        where = f"{path}: page.{name}"
        try:
            parsed = _PAGE_ENV.parse(source)
        except TemplateSyntaxError as exc:
            raise ContentError(f"{where}: line {exc.lineno}: {exc.message}") from None
        unknown = sorted(meta.find_undeclared_variables(parsed) - set(values))
        if unknown:
            raise ContentError(
                f"{where}: unknown variable {', '.join(unknown)} "
                f"(a page may name {', '.join(sorted(values))})"
            )
        try:
            texts[name] = _PAGE_ENV.from_string(source).render(values).strip()
        except TemplateError as exc:
            raise ContentError(f"{where}: {exc.message or exc}") from None
    return PageText(**texts)


@dataclass(frozen=True, slots=True)
class TopicGovernance:
    """What governance needs of one topic file: where it is, its page, the sources it cites."""

    path: Path
    page: TopicPage
    cites: Sequence[str]


@dataclass(frozen=True, slots=True)
class Governance:
    """The content's version, each topic's HTI-1 source attributes and its page texts."""

    version: ContentVersion
    hti1: Mapping[str, Hti1Attributes]
    pages: Mapping[str, PageText]


def load_governance(
    directory: Path,
    settings: SiteSettings,
    sources: Mapping[str, object],
    *,
    topics: Mapping[str, TopicGovernance],
    hti1: tuple[Any, Path],
    overlays: Sequence[Path] = (),
) -> Governance:
    """Check and compile the governance content; ``hti1`` is the parsed file and its path."""
    data, hti1_path = hti1
    values = page_values(settings)
    return Governance(
        version=ContentVersion(
            version=settings.content_version,
            released=settings.released,
            fingerprint=fingerprint(content_files(directory, overlays)),
        ),
        hti1=resolve_hti1(
            hti1_path,
            data,
            cites={code: topic.cites for code, topic in topics.items()},
            sources=sources,
        ),
        pages={code: render_page(t.path, t.page, values) for code, t in topics.items()},
    )
