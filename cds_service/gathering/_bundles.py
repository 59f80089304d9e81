"""A prefetch value or a fetched page → the resources it holds, walking the decoded dicts as-is.

This is the hot path with full prefetch: no validation and no copies of resources, only a new
list of references to the dicts orjson already built.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

# A tuple, not a set: a JSON value may be unhashable (a list), and ``in`` must not raise.
_BENIGN_SEVERITIES = ("information", "warning")


class Unusable(Enum):
    """Why a value holds no usable data."""

    OPERATION_OUTCOME = "an OperationOutcome"
    NOT_A_RESOURCE = "not a FHIR resource or Bundle"


@dataclass(frozen=True, slots=True)
class Flattened:
    resources: list[dict[str, Any]]
    skipped: int
    """Bundle entries with no resource object."""
    next_url: str | None
    """Bundle.link[next], as given (possibly relative)."""
    error_outcome: bool
    """An OperationOutcome with errors travelled alongside the resources."""


def _is_error_outcome(outcome: dict[str, Any]) -> bool:
    # Only an outcome that plainly says information/warning is harmless; a malformed one
    # may be hiding a failure, so it counts as an error.
    issues = outcome.get("issue")
    if not isinstance(issues, list) or not issues:
        return True
    return not all(
        isinstance(issue, dict) and issue.get("severity") in _BENIGN_SEVERITIES for issue in issues
    )


def next_link(bundle: dict[str, Any]) -> str | None:
    links = bundle.get("link")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url else None
    return None


def _flatten_bundle(bundle: dict[str, Any]) -> Flattened | Unusable:
    entries = bundle.get("entry")
    if entries is None:
        return Flattened([], 0, next_link(bundle), False)
    if not isinstance(entries, list):
        return Unusable.NOT_A_RESOURCE
    resources: list[dict[str, Any]] = []
    skipped = 0
    error_outcome = False
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            skipped += 1
        elif resource.get("resourceType") == "OperationOutcome":
            error_outcome = error_outcome or _is_error_outcome(resource)
        else:
            search = entry.get("search")
            if not (isinstance(search, dict) and search.get("mode") == "outcome"):
                resources.append(resource)
    if error_outcome and not resources:
        return Unusable.OPERATION_OUTCOME
    return Flattened(resources, skipped, next_link(bundle), error_outcome)


def flatten(value: Any) -> Flattened | Unusable:
    """A Bundle's entry resources (outcome entries skipped), or a single resource as one item.

    OperationOutcome resources are never data: a bare one, or a Bundle holding nothing but
    outcomes with errors, is ``Unusable.OPERATION_OUTCOME``. Anything that is not a JSON object
    with a ``resourceType``, or a Bundle whose ``entry`` is not an array, is
    ``Unusable.NOT_A_RESOURCE``.
    """
    if not isinstance(value, dict):
        return Unusable.NOT_A_RESOURCE
    resource_type = value.get("resourceType")
    if resource_type == "Bundle":
        return _flatten_bundle(value)
    if resource_type == "OperationOutcome":
        return Unusable.OPERATION_OUTCOME
    if not isinstance(resource_type, str) or not resource_type:
        return Unusable.NOT_A_RESOURCE
    return Flattened([value], 0, None, False)
