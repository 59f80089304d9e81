"""A strict checker for the CDS Hooks 2.0.1 cards this service sends.

``check_card(card)`` and ``check_response(body)`` raise ``AssertionError`` with a message that
names the offending field (as a JSON path) and what was wrong. They check the CDS Hooks 2.0.1
card format plus this service's own promises (service.md §3, clinical-rules.md §2-§3):

- ``uuid`` present and a valid uuid; ``summary`` a non-empty single-line string of at most 139
  characters; ``indicator`` info, warning or critical; ``detail`` a non-empty string;
- ``source`` with a ``label`` and a ``topic`` Coding (system ``urn:cds-service:topic``);
- each suggestion has a ``label``, a ``uuid`` and actions; a ``create`` action carries a
  ServiceRequest or MedicationRequest that validates with ``fhir.resources.R4B`` and has status
  draft, intent proposal and a subject; ``selectionBehavior`` is ``any`` exactly when there are
  suggestions;
- ``overrideReasons`` are Codings with system, code and display; links are absolute or smart;
- no ``null`` and no empty string, list or object anywhere in the card;
- a response has a list of cards, at most one per topic, ordered critical > warning > info.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, NoReturn

SUMMARY_LIMIT = 139
TOPIC_SYSTEM = "urn:cds-service:topic"
INDICATORS = ("info", "warning", "critical")
INDICATOR_RANK = {"info": 0, "warning": 1, "critical": 2}
CARD_FIELDS = frozenset(
    {
        "uuid",
        "summary",
        "detail",
        "indicator",
        "source",
        "suggestions",
        "selectionBehavior",
        "overrideReasons",
        "links",
        "extension",
    }
)
SUGGESTION_FIELDS = frozenset({"label", "uuid", "isRecommended", "actions", "extension"})
ACTION_TYPES = ("create", "update", "delete")
LINK_TYPES = ("absolute", "smart")


def _fail(path: str, message: str) -> NoReturn:
    raise AssertionError(f"{path}: {message}")


def _require(condition: bool, path: str, message: str) -> None:
    if not condition:
        _fail(path, message)


def _text(value: Any, path: str) -> str:
    _require(isinstance(value, str), path, f"must be a string, got {type(value).__name__}")
    _require(bool(value.strip()), path, "must not be empty or blank")
    return str(value)


def _uuid(value: Any, path: str) -> str:
    text = _text(value, path)
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        _fail(path, f"{text!r} is not a valid uuid")
    _require(str(parsed) == text.lower(), path, f"{text!r} is not a canonical uuid")
    return text


def _no_empty_values(node: Any, path: str) -> None:
    """No null, and no empty string, list or object, anywhere (absent fields are omitted)."""
    if node is None:
        _fail(path, "is null; omit absent fields instead")
    if isinstance(node, str):
        _require(node != "", path, "is an empty string; omit it instead")
    elif isinstance(node, list):
        _require(bool(node), path, "is an empty list; omit it instead")
        for index, item in enumerate(node):
            _no_empty_values(item, f"{path}[{index}]")
    elif isinstance(node, dict):
        _require(bool(node), path, "is an empty object; omit it instead")
        for key, value in node.items():
            _require(isinstance(key, str), path, f"has a non-string key {key!r}")
            _no_empty_values(value, f"{path}.{key}")
    else:
        _require(
            isinstance(node, bool | int | float),
            path,
            f"has a value of type {type(node).__name__}, which is not JSON",
        )


def _coding(value: Any, path: str, *, system: str | None = None) -> None:
    _require(isinstance(value, dict), path, "must be a Coding object")
    for key in ("system", "code", "display"):
        _text(value.get(key), f"{path}.{key}")
    if system is not None:
        _require(
            value["system"] == system,
            f"{path}.system",
            f"must be {system!r}, got {value['system']!r}",
        )


def _validate_fhir(resource: Mapping[str, Any], path: str) -> None:
    from fhir.resources.R4B.medicationrequest import MedicationRequest
    from fhir.resources.R4B.servicerequest import ServiceRequest

    kind = resource.get("resourceType")
    models: dict[str, Any] = {
        "ServiceRequest": ServiceRequest,
        "MedicationRequest": MedicationRequest,
    }
    model = models.get(str(kind))
    if model is None:
        _fail(f"{path}.resourceType", f"expected ServiceRequest or MedicationRequest, got {kind!r}")
    try:
        model.model_validate(dict(resource))
    except Exception as exc:  # pydantic's ValidationError, or fhir.resources' own errors
        _fail(path, f"is not a valid FHIR R4 {kind}: {exc}")


def _check_resource(resource: Any, path: str) -> None:
    _require(isinstance(resource, dict), path, "must be a FHIR resource object")
    _validate_fhir(resource, path)
    _require(
        resource.get("status") == "draft",
        f"{path}.status",
        f"must be 'draft', got {resource.get('status')!r}",
    )
    _require(
        resource.get("intent") == "proposal",
        f"{path}.intent",
        f"must be 'proposal', got {resource.get('intent')!r}",
    )
    subject = resource.get("subject")
    _require(isinstance(subject, dict), f"{path}.subject", "is required")
    reference = _text(subject.get("reference"), f"{path}.subject.reference")
    _require(
        reference.startswith("Patient/") and len(reference) > len("Patient/"),
        f"{path}.subject.reference",
        f"must reference the patient ('Patient/<id>'), got {reference!r}",
    )


def _check_action(action: Any, path: str) -> None:
    _require(isinstance(action, dict), path, "must be an object")
    kind = action.get("type")
    _require(kind in ACTION_TYPES, f"{path}.type", f"must be one of {ACTION_TYPES}, got {kind!r}")
    _text(action.get("description"), f"{path}.description")
    if kind == "create":
        _check_resource(action.get("resource"), f"{path}.resource")
    elif kind == "update":
        _require(isinstance(action.get("resource"), dict), f"{path}.resource", "is required")
    else:
        _text(action.get("resourceId"), f"{path}.resourceId")


def _check_suggestion(suggestion: Any, path: str) -> None:
    _require(isinstance(suggestion, dict), path, "must be an object")
    unknown = set(suggestion) - SUGGESTION_FIELDS
    _require(not unknown, path, f"has unknown fields {sorted(unknown)}")
    _text(suggestion.get("label"), f"{path}.label")
    _uuid(suggestion.get("uuid"), f"{path}.uuid")
    if "isRecommended" in suggestion:
        _require(
            isinstance(suggestion["isRecommended"], bool), f"{path}.isRecommended", "must be a bool"
        )
    actions = suggestion.get("actions")
    _require(
        isinstance(actions, list) and bool(actions), f"{path}.actions", "must be a non-empty list"
    )
    for index, action in enumerate(actions):
        _check_action(action, f"{path}.actions[{index}]")


def _check_link(link: Any, path: str) -> None:
    _require(isinstance(link, dict), path, "must be an object")
    _text(link.get("label"), f"{path}.label")
    url = _text(link.get("url"), f"{path}.url")
    _require(url.startswith(("https://", "http://")), f"{path}.url", f"must be absolute: {url!r}")
    kind = link.get("type")
    _require(kind in LINK_TYPES, f"{path}.type", f"must be one of {LINK_TYPES}, got {kind!r}")


def check_card(card: Any, *, path: str = "card") -> None:
    """Raise AssertionError unless ``card`` is a strict, complete CDS Hooks 2.0.1 card."""
    _require(isinstance(card, dict), path, f"must be an object, got {type(card).__name__}")
    _no_empty_values(card, path)
    unknown = set(card) - CARD_FIELDS
    _require(not unknown, path, f"has unknown fields {sorted(unknown)}")

    card_uuid = _uuid(card.get("uuid"), f"{path}.uuid")
    summary = _text(card.get("summary"), f"{path}.summary")
    _require(
        len(summary) <= SUMMARY_LIMIT,
        f"{path}.summary",
        f"has {len(summary)} characters, more than {SUMMARY_LIMIT}: {summary!r}",
    )
    _require("\n" not in summary, f"{path}.summary", "must be a single line")
    indicator = card.get("indicator")
    _require(
        indicator in INDICATORS,
        f"{path}.indicator",
        f"must be one of {INDICATORS}, got {indicator!r}",
    )
    _text(card.get("detail"), f"{path}.detail")

    source = card.get("source")
    _require(isinstance(source, dict), f"{path}.source", "is required")
    _text(source.get("label"), f"{path}.source.label")
    if "url" in source:
        url = _text(source["url"], f"{path}.source.url")
        _require(url.startswith(("https://", "http://")), f"{path}.source.url", "must be absolute")
    if "icon" in source:
        _text(source["icon"], f"{path}.source.icon")
    _coding(source.get("topic"), f"{path}.source.topic", system=TOPIC_SYSTEM)

    suggestions = card.get("suggestions")
    uuids = [card_uuid]
    if suggestions is not None:
        _require(isinstance(suggestions, list), f"{path}.suggestions", "must be a list")
        for index, suggestion in enumerate(suggestions):
            _check_suggestion(suggestion, f"{path}.suggestions[{index}]")
            uuids.append(suggestion["uuid"])
        _require(
            card.get("selectionBehavior") == "any",
            f"{path}.selectionBehavior",
            f"must be 'any' when there are suggestions, got {card.get('selectionBehavior')!r}",
        )
    else:
        _require(
            "selectionBehavior" not in card,
            f"{path}.selectionBehavior",
            "must be omitted when there are no suggestions",
        )
    _require(len(set(uuids)) == len(uuids), path, f"reuses a uuid among {uuids}")

    reasons = card.get("overrideReasons")
    _require(
        isinstance(reasons, list) and bool(reasons),
        f"{path}.overrideReasons",
        "must be a non-empty list of Codings",
    )
    for index, reason in enumerate(reasons):
        _coding(reason, f"{path}.overrideReasons[{index}]")
    codes = [reason["code"] for reason in reasons]
    _require(len(set(codes)) == len(codes), f"{path}.overrideReasons", f"repeats a code: {codes}")

    links = card.get("links")
    if links is not None:
        _require(isinstance(links, list), f"{path}.links", "must be a list")
        for index, link in enumerate(links):
            _check_link(link, f"{path}.links[{index}]")


def topic_of(card: Mapping[str, Any]) -> str:
    return str(card["source"]["topic"]["code"])


def check_response(body: Any, *, max_cards: int | None = None) -> None:
    """Raise AssertionError unless ``body`` is a valid response: strict cards, one per topic,
    ordered critical > warning > info (and no more than ``max_cards`` when given)."""
    _require(isinstance(body, dict), "response", f"must be an object, got {type(body).__name__}")
    unknown = set(body) - {"cards", "systemActions"}
    _require(not unknown, "response", f"has unknown fields {sorted(unknown)}")
    cards = body.get("cards")
    _require(isinstance(cards, list), "response.cards", "must be a list")
    if "systemActions" in body:
        _require(
            isinstance(body["systemActions"], list), "response.systemActions", "must be a list"
        )
    for index, card in enumerate(cards):
        check_card(card, path=f"response.cards[{index}]")
    topics = [topic_of(card) for card in cards]
    repeated = sorted({topic for topic in topics if topics.count(topic) > 1})
    _require(not repeated, "response.cards", f"has more than one card for topics {repeated}")
    uuids = [card["uuid"] for card in cards]
    _require(len(set(uuids)) == len(uuids), "response.cards", "reuses a card uuid")
    ranks = [INDICATOR_RANK[card["indicator"]] for card in cards]
    _require(
        ranks == sorted(ranks, reverse=True),
        "response.cards",
        "must be ordered critical > warning > info, got "
        + ", ".join(f"{t}={c['indicator']}" for t, c in zip(topics, cards, strict=True)),
    )
    if max_cards is not None:
        _require(
            len(cards) <= max_cards, "response.cards", f"has {len(cards)} cards, cap is {max_cards}"
        )
