"""A client's configuration options applied to one hook call.

The options are offered in discovery and read from the request by ``protocol`` (see
``protocol._configuration``); here they become a suppressor the engine consults for each
finding, most urgent first. A finding an option leaves out is withheld with a reason that starts
with ``CONFIGURED`` (the trace shows it): it is not shown, so it is not recorded in the audit as
shown, nor counted as snoozed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .alerting import Suppressor
from .protocol import (
    DEFAULT_CONFIGURATION,
    INFO_CARDS,
    MAX_CARDS,
    Configuration,
    ConfigurationOption,
    HookRequest,
    read_configuration,
)
from .rules import Finding

__all__ = [
    "CONFIGURED",
    "DEFAULT_CONFIGURATION",
    "Configuration",
    "client_configuration",
    "configured",
    "removed_by_configuration",
]

CONFIGURED = "configuration: "
"""How every reason for a finding left out by the client's configuration starts."""


def removed_by_configuration(reason: str) -> bool:
    return reason.startswith(CONFIGURED)


def client_configuration(
    request: HookRequest, options: Mapping[str, Sequence[ConfigurationOption]]
) -> Configuration:
    """The configuration the request sends, checked against the options its hook's service
    offers (``options``: per hook, compiled with the profile); ``BadRequest`` names a bad
    option."""
    if not request.extension:
        return DEFAULT_CONFIGURATION
    return read_configuration(request.extension, options[request.hook])


def configured(suppress: Suppressor | None, configuration: Configuration) -> Suppressor | None:
    """Leaves out what the configuration switches off, before ``suppress`` (so a topic switched
    off costs no read of past overrides), and counts what passes ``suppress`` against
    ``max-cards``: the engine asks in order of urgency, so the most urgent cards are kept."""
    if configuration.is_default:
        return suppress
    passed = 0

    def check(finding: Finding) -> str | None:
        nonlocal passed
        if finding.topic in configuration.topics_off:
            return f"{CONFIGURED}{finding.topic} is false"
        if finding.indicator == "info" and not configuration.info_cards:
            return f"{CONFIGURED}{INFO_CARDS} is false"
        reason = suppress(finding) if suppress is not None else None
        if reason:
            return reason
        if configuration.max_cards is not None and passed >= configuration.max_cards:
            return f"{CONFIGURED}{MAX_CARDS} is {configuration.max_cards}"
        passed += 1
        return None

    return check
