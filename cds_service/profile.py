"""A profile: the content a client population is served with, and everything compiled from it.

One value bundles the content of ``cards/`` (plus a site's overlay), the engine, the prefetch
templates, the discovery document and the snooze policy, all built once by ``build_profile``.
The service picks a profile per call; per-client profiles live beside the trust configuration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .alerting import SnoozePolicy
from .content import Content, load_content
from .engine import Engine
from .gathering import DEFAULT_SERVER_OPTIONS, FhirServerOptions
from .protocol import OPTIONAL_PREFETCH, discovery_document, prefetch_templates
from .rules import ADVICE_SPEC, TOPIC_SPECS


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    content: Content
    engine: Engine
    templates: Mapping[str, str]
    optional_keys: frozenset[str]
    discovery: Mapping[str, Any]
    snooze: SnoozePolicy
    fhir: FhirServerOptions = DEFAULT_SERVER_OPTIONS
    """How fallback searches talk to this client's FHIR server."""
    cds_hooks_version: str = "2.0"
    """The CDS Hooks version the client speaks: "1.0" or "2.0"."""


def load_site_content(directory: Path, overlays: Sequence[Path] = ()) -> Content:
    """``cards/`` (with a site's overlays on top), checked against the rules' topic specs."""
    return load_content(directory, TOPIC_SPECS, ADVICE_SPEC, overlays=overlays)


def build_profile(
    content: Content,
    *,
    name: str = "default",
    public_base_url: str = "",
    fhir: FhirServerOptions = DEFAULT_SERVER_OPTIONS,
    cds_hooks_version: str = "2.0",
) -> Profile:
    return Profile(
        name=name,
        content=content,
        engine=Engine(content, public_base_url=public_base_url),
        templates=prefetch_templates(content),
        optional_keys=OPTIONAL_PREFETCH,
        discovery=discovery_document(content, TOPIC_SPECS, public_base_url=public_base_url),
        snooze=SnoozePolicy.from_content(content),
        fhir=fhir,
        cds_hooks_version=cds_hooks_version,
    )
