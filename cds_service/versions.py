"""What a client is sent for the CDS Hooks version it speaks.

Cards are rendered once, in the 2.0 form, and that form is what the audit records. A 2.0
client gets them as they are. A 1.0 client gets each card with only what CDS Hooks 1.0 defines
(a strict 1.0 client may reject anything else): no card ``uuid``, no ``overrideReasons``, no
``source.topic``, and ``selectionBehavior: at-most-one``, the only value 1.0 allows. The card's
``extension`` stays: 1.0 reserves that name for implementations.

``at-most-one`` is not ``any``: it lets the clinician take one suggestion only. A card whose
suggestions go together (a magnesium recheck *and* a magnesium order) would read as a choice
between them. So for a 1.0 client a card with several suggestions offers first all of them as
one ("Both: ...", every action of each), then each on its own: taking at most one of those is
taking any of the 2.0 card's suggestions, all or one. A suggestion's ``uuid`` is kept (1.0
defines it); the combined one's is derived from the uuids it combines, so it is the same on
every read of the response and can be traced to the audited suggestions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

CDS_HOOKS_1_0 = "1.0"
CDS_HOOKS_2_0 = "2.0"
CDS_HOOKS_VERSIONS = (CDS_HOOKS_1_0, CDS_HOOKS_2_0)
AT_MOST_ONE = "at-most-one"

# What CDS Hooks 1.0 defines, per object (plus ``extension``, reserved by 1.0 for implementations).
_CARD = (
    "summary",
    "detail",
    "indicator",
    "source",
    "suggestions",
    "selectionBehavior",
    "links",
    "extension",
)
_SOURCE = ("label", "url", "icon")
_SUGGESTION = ("label", "uuid", "actions")
_ACTION = ("type", "description", "resource")
_LINK = ("label", "url", "type", "appContext")
# Names the uuid of a combined suggestion: uuid5 of the uuids it combines.
_COMBINED = uuid.UUID("5d0a1c43-6f55-4e2b-9a0e-6b1a8f2f3c11")


def _only(item: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    return {name: item[name] for name in fields if name in item}


def _suggestion(suggestion: Mapping[str, Any]) -> dict[str, Any]:
    shaped = _only(suggestion, _SUGGESTION)
    if "actions" in shaped:
        shaped["actions"] = [_only(action, _ACTION) for action in shaped["actions"]]
    return shaped


def combined_suggestion(suggestions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One suggestion that takes every action of ``suggestions`` (already in the 1.0 shape)."""
    labels = "; ".join(str(s["label"]) for s in suggestions)
    combined: dict[str, Any] = {
        "label": f"{'Both' if len(suggestions) == 2 else 'All'}: {labels}",
        "actions": [action for s in suggestions for action in s.get("actions", ())],
    }
    uuids = [str(s["uuid"]) for s in suggestions if "uuid" in s]
    if len(uuids) == len(suggestions):
        combined["uuid"] = str(uuid.uuid5(_COMBINED, "+".join(uuids)))
    return combined


def card_1_0(card: Mapping[str, Any]) -> dict[str, Any]:
    """A rendered (2.0) card as a CDS Hooks 1.0 client is sent it."""
    shaped = dict(card, source=_only(card["source"], _SOURCE))
    shaped.pop("suggestions", None)
    shaped.pop("selectionBehavior", None)
    if "links" in shaped:
        shaped["links"] = [_only(link, _LINK) for link in shaped["links"]]
    suggestions = [_suggestion(s) for s in card.get("suggestions", ())]
    if len(suggestions) > 1:
        suggestions = [combined_suggestion(suggestions), *suggestions]
    if suggestions:
        shaped["suggestions"] = suggestions
        shaped["selectionBehavior"] = AT_MOST_ONE
    return _only(shaped, _CARD)


def response_for(version: str, cards: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The hook response body for a client of ``version``."""
    if version == CDS_HOOKS_1_0:
        return {"cards": [card_1_0(card) for card in cards]}
    return {"cards": list(cards)}
