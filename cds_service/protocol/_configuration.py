"""Client-side configuration options, after Da Vinci CRD's ``configuration-options`` pattern.

Discovery advertises, on each service, the options that matter for its hook
(``extension."cds-service.configuration-options"``: a list of ``{code, type, name, description,
default}``); a hook request may send values for them (``extension."cds-service.configuration"``,
or CRD's ``extension."davinci-crd.configuration"``, as ``{code: value}``). A code this service
does not offer is ignored; a value of the wrong JSON type or out of range is a 400 naming the
option. Nothing sent means today's behaviour: every enabled topic, the content's card cap,
info cards shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..content import Content, TopicSpec
from .errors import BadRequest, Issue, ServiceError

CONFIGURATION_OPTIONS_EXTENSION = "cds-service.configuration-options"
CONFIGURATION_EXTENSION = "cds-service.configuration"
# EHRs built for CRD send configuration under CRD's key: read too, ours wins for a code in both.
CRD_CONFIGURATION_EXTENSION = "davinci-crd.configuration"
_READ_FROM = (CRD_CONFIGURATION_EXTENSION, CONFIGURATION_EXTENSION)

MAX_CARDS = "max-cards"
INFO_CARDS = "info-cards"
MAX_CARDS_MINIMUM = 1

OptionType = Literal["boolean", "integer"]


@dataclass(frozen=True, slots=True)
class ConfigurationOption:
    """One option a service offers, as discovery lists it."""

    code: str
    type: OptionType
    name: str
    description: str
    default: bool | int

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "type": self.type,
            "name": self.name,
            "description": self.description,
            "default": self.default,
        }


@dataclass(frozen=True, slots=True)
class Configuration:
    """What a client's configuration asks of one call. The default asks nothing of it."""

    topics_off: frozenset[str] = frozenset()
    max_cards: int | None = None
    info_cards: bool = True

    @property
    def is_default(self) -> bool:
        return self == DEFAULT_CONFIGURATION

    def as_dict(self) -> dict[str, Any]:
        """For the trace: only what differs from the defaults."""
        found: dict[str, Any] = {code: False for code in sorted(self.topics_off)}
        if self.max_cards is not None:
            found[MAX_CARDS] = self.max_cards
        if not self.info_cards:
            found[INFO_CARDS] = False
        return found


DEFAULT_CONFIGURATION = Configuration()


def configurable_topics(content: Content, specs: Sequence[TopicSpec], hook: str) -> list[str]:
    """The topics a client of this hook may switch off: those that fire on the hook and are
    enabled and live in the content (a silent topic's card never reaches the EHR anyway)."""
    return [
        spec.code
        for spec in specs
        if hook in spec.hooks
        and spec.code in content.topics
        and content.topics[spec.code].topic.enabled
        and content.topics[spec.code].topic.mode == "live"
    ]


def configuration_options(
    content: Content, specs: Sequence[TopicSpec], hook: str
) -> tuple[ConfigurationOption, ...]:
    """The options a service of ``hook`` offers: one per topic, then ``max-cards`` and
    ``info-cards``. Topic codes are the rules' own and never ``max-cards`` or ``info-cards``."""
    titles = {spec.code: spec.title for spec in specs}
    cap = content.settings.max_cards
    topics = tuple(
        ConfigurationOption(
            code,
            "boolean",
            titles[code],
            f"false leaves out the cards of this topic ({code}); its page, listed in "
            f"cds-service.topics, says when it fires.",
            True,
        )
        for code in configurable_topics(content, specs, hook)
    )
    return (
        *topics,
        ConfigurationOption(
            MAX_CARDS,
            "integer",
            "Maximum number of cards",
            f"At most this many cards per call (1 or more), the most urgent kept: critical, "
            f"then warning, then info. The content's own cap of {cap} still applies.",
            cap,
        ),
        ConfigurationOption(
            INFO_CARDS,
            "boolean",
            "Information cards",
            "false leaves out every card whose indicator is info.",
            True,
        ),
    )


@dataclass(frozen=True, slots=True)
class _Sent:
    value: Any
    expression: str


def _sent_values(extension: Any) -> dict[str, _Sent]:
    """Every ``code: value`` the request sends, with where it was sent (ours after CRD's, so
    ours wins). An ``extension`` that is not an object is ignored, as before options existed."""
    if not isinstance(extension, Mapping):
        return {}
    sent: dict[str, _Sent] = {}
    for key in _READ_FROM:
        if key not in extension:
            continue
        values = extension[key]
        if not isinstance(values, Mapping):
            raise BadRequest(
                f"extension.{key} must be an object of option codes and values, "
                f"not {_json_type(values)}",
                f"extension.{key}",
            )
        for code, value in values.items():
            sent[str(code)] = _Sent(value, f"extension.{key}.{code}")
    return sent


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return "a decimal number"


def _problem(option: ConfigurationOption, value: Any) -> str | None:
    """What is wrong with a value sent for ``option`` (the JSON type is named, never the value
    itself, unless it is an integer out of range)."""
    if option.type == "boolean":
        if not isinstance(value, bool):
            return f"must be true or false (a JSON boolean), not {_json_type(value)}"
        return None
    # bool is an int in Python; 3.0 is not a JSON integer
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be a whole number (a JSON integer), not {_json_type(value)}"
    if value < MAX_CARDS_MINIMUM:
        return f"must be {MAX_CARDS_MINIMUM} or more, not {value}"
    return None


def read_configuration(extension: Any, options: Sequence[ConfigurationOption]) -> Configuration:
    """The configuration a request's ``extension`` asks for, checked against the options the
    service offers: a 400 ``ServiceError`` with one issue per bad option, each naming it."""
    sent = _sent_values(extension)
    if not sent:
        return DEFAULT_CONFIGURATION
    values: dict[str, bool | int] = {}
    issues: list[Issue] = []
    for option in options:
        if option.code not in sent:
            continue
        found = sent[option.code]
        problem = _problem(option, found.value)
        if problem:
            issues.append(
                Issue(f"{found.expression} {problem}", "invalid", "error", found.expression)
            )
        else:
            values[option.code] = found.value
    if issues:
        raise ServiceError(400, issues)
    if not values:
        return DEFAULT_CONFIGURATION
    max_cards = values.pop(MAX_CARDS, None)
    info_cards = values.pop(INFO_CARDS, True)
    return Configuration(
        topics_off=frozenset(code for code, on in values.items() if on is False),
        max_cards=int(max_cards) if max_cards is not None else None,
        info_cards=bool(info_cards),
    )
