"""What a committee needs to govern ``cards/``: which content this is, and what its pages say.

``ContentVersion`` names a release of the content: the site's ``content_version`` and
``released`` date from ``settings.yaml``, and a fingerprint of every file loaded, so two
deployments that claim the same version can be told apart if their files differ by one byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ._schema import SiteSettings, Threshold

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


def content_files(directory: Path) -> list[Path]:
    """Every file the loader reads: the YAML files of ``cards/`` and of ``cards/topics/``."""
    return sorted([*directory.glob("*.yaml"), *(directory / "topics").glob("*.yaml")])


def fingerprint(directory: Path, files: Iterable[Path]) -> str:
    """SHA-256 over each file's path relative to ``directory`` and its bytes, in path order."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(directory).as_posix()):
        name = path.relative_to(directory).as_posix().encode()
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


def page_values(settings: SiteSettings) -> dict[str, Any]:
    """What a topic page template may name: ``thresholds.<name>`` and ``windows.<name>``.

    A lab threshold prints with its units and twin (``{{ thresholds.mg_low }}``); a plain number
    (``egfr_iv_cap``, ``mg_decline_fraction``) prints as a number, and ``| percent`` turns a
    fraction into a percentage.
    """
    thresholds: dict[str, Any] = {}
    for name, value in settings.thresholds:
        if isinstance(value, Threshold):
            mmol = _lab_number(value.mmol_per_l, at_least=2 if value.mmol_per_l < 1 else 1)
            mg_dl = value.mg_per_dl
            thresholds[name] = ThresholdText(
                f"{mmol} mmol/L",
                f"{_lab_number(mg_dl, at_least=1)} mg/dL" if mg_dl is not None else None,
            )
        elif isinstance(value, int | float) and not isinstance(value, bool):
            thresholds[name] = _number(value)
        else:
            thresholds[name] = value
    windows = dict(settings.windows)
    return {"thresholds": thresholds, "windows": windows}


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
