"""A profile: the content a client population is served with, and everything compiled from it.

One value bundles the content of ``cards/`` (plus a site's overlay), the engine, the prefetch
templates, the discovery document and the snooze policy, all built once by ``build_profile``.
The service picks a profile per call: a ``ProfileSet`` holds the default profile and, by ``iss``,
the profile of each client the trust file gives one (``build_profile_set``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .alerting import SnoozePolicy
from .content import Content, load_content
from .engine import Engine
from .gathering import DEFAULT_SERVER_OPTIONS, FhirServerOptions
from .protocol import (
    OPTIONAL_PREFETCH,
    SERVICES,
    ConfigurationOption,
    configuration_options,
    discovery_document,
    prefetch_templates,
)
from .rules import ADVICE_SPEC, TOPIC_SPECS

if TYPE_CHECKING:  # the trust package (and JWT) is imported only when a trust file is used
    from .trust import ClientProfile


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    content: Content
    engine: Engine
    templates: Mapping[str, str]
    optional_keys: frozenset[str]
    discovery: Mapping[str, Any]
    snooze: SnoozePolicy
    configuration_options: Mapping[str, tuple[ConfigurationOption, ...]]
    """Per hook, the configuration options its service offers (as discovery lists them)."""
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
        configuration_options={
            service.hook: configuration_options(content, TOPIC_SPECS, service.hook)
            for service in SERVICES.values()
        },
        fhir=fhir,
        cds_hooks_version=cds_hooks_version,
    )


@dataclass(frozen=True, slots=True)
class ProfileSet:
    """Every profile the service serves with: the default one, and each client's, by ``iss``."""

    default: Profile
    by_iss: Mapping[str, Profile] = field(default_factory=dict)

    def for_iss(self, iss: str | None) -> Profile:
        """The profile of the client with this ``iss``; the default one for any other caller."""
        if iss is None:
            return self.default
        return self.by_iss.get(iss, self.default)

    @property
    def profiles(self) -> tuple[Profile, ...]:
        """Each distinct profile once, the default first."""
        distinct = {id(self.default): self.default}
        for profile in self.by_iss.values():
            distinct.setdefault(id(profile), profile)
        return tuple(distinct.values())


def _fhir_options(settings: ClientProfile) -> FhirServerOptions:
    return FhirServerOptions(
        page_size=settings.page_size, sort=settings.sort, skip_resources=settings.skip_resources
    )


def build_profile_set(
    content: Content,
    *,
    public_base_url: str = "",
    default: ClientProfile | None = None,
    clients: Mapping[str, ClientProfile] | None = None,
    load_overlay: Callable[[ClientProfile], Content] | None = None,
) -> ProfileSet:
    """One ``Profile`` per distinct profile of the trust file (clients with the same settings
    share it), and one content per overlay folder (profiles naming the same folder share it):
    ``load_overlay`` loads and checks ``cards/`` with a profile's folder on top."""
    contents: dict[Path, Content] = {}
    built: dict[ClientProfile | None, Profile] = {}

    def profile_of(settings: ClientProfile | None) -> Profile:
        if settings is not None and settings.is_default:
            settings = None  # the same as no profile at all
        if settings not in built:
            built[settings] = build(settings)
        return built[settings]

    def build(settings: ClientProfile | None) -> Profile:
        if settings is None:
            return build_profile(content, public_base_url=public_base_url)
        chosen = content
        if settings.content is not None:
            if settings.content not in contents:
                if load_overlay is None:
                    raise ValueError(f"{settings.where}: an overlay needs load_overlay")
                contents[settings.content] = load_overlay(settings)
            chosen = contents[settings.content]
        return build_profile(
            chosen,
            name=settings.describe(),
            public_base_url=public_base_url,
            fhir=_fhir_options(settings),
            cds_hooks_version=settings.cds_hooks_version,
        )

    default_profile = profile_of(default)
    by_iss = {iss: profile_of(settings) for iss, settings in (clients or {}).items()}
    return ProfileSet(default_profile, by_iss)
