"""context.draftOrders → the draft resources as models, tolerating what real clients send."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..protocol import Resource, as_resource


@dataclass(frozen=True, slots=True)
class Drafts:
    resources: list[Resource]
    notes: tuple[str, ...]


def _entry_resources(entries: list[Any]) -> tuple[list[Resource], int]:
    # An array item may be a Bundle entry or (some older clients) the resource itself.
    resources: list[Resource] = []
    skipped = 0
    for item in entries:
        resource = as_resource(item.get("resource", item) if isinstance(item, dict) else None)
        if resource is not None and isinstance(resource.resourceType, str):
            resources.append(resource)
        else:
            skipped += 1
    return resources, skipped


def _flatten(value: Any) -> tuple[list[Resource], list[str]]:
    entries: Any
    if value is None:
        return [], []
    if isinstance(value, list):
        entries = value
    elif isinstance(value, dict) and value.get("resourceType") in ("Bundle", None):
        # The sandbox sends Bundles without ``type``; an empty one may have no ``entry``.
        entries = value.get("entry")
        if entries is None:
            return [], []
        if not isinstance(entries, list):
            return [], ["draftOrders.entry is not an array: ignored"]
    elif isinstance(value, dict) and isinstance(value.get("resourceType"), str):
        resource = as_resource(value)
        if resource is None:
            return [], ["draftOrders is nested too deeply: ignored"]
        return [resource], []
    else:
        return [], ["draftOrders is not a Bundle: ignored"]
    resources, skipped = _entry_resources(entries)
    notes = [f"draftOrders: skipped {skipped} entries without a resource"] if skipped else []
    return resources, notes


def draft_orders(context: Mapping[str, Any], cap: int) -> Drafts:
    """The draft resources, keeping the newest (last) ``cap``."""
    resources, notes = _flatten(context.get("draftOrders"))
    if len(resources) > cap:
        resources = resources[-cap:]
        notes.append(f"draftOrders capped at {cap}")
    return Drafts(resources, tuple(notes))
