"""A profile: the content a client population is served with, and everything compiled from it.

One value bundles the content of ``cards/`` (plus a site's overlay), the engine, the prefetch
templates, the discovery document and the snooze policy, all built once by ``build_profile``.
The service picks a profile per call; per-client profiles live beside the trust configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .alerting import SnoozePolicy
from .content import Content
from .engine import Engine
from .protocol import discovery_document, prefetch_templates


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    content: Content
    engine: Engine
    templates: Mapping[str, str]
    discovery: Mapping[str, Any]
    snooze: SnoozePolicy


def build_profile(content: Content, *, name: str = "default") -> Profile:
    return Profile(
        name=name,
        content=content,
        engine=Engine(content),
        templates=prefetch_templates(content),
        discovery=discovery_document(content),
        snooze=SnoozePolicy.from_content(content),
    )
