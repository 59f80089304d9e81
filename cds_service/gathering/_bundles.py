"""A prefetch value or a fetched page → the resources it holds.

This is the hot path with full prefetch: no validation and no copies of resources, only a new
list of references to the models the decoder already built.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..protocol import BundleEntry, BundleLink, EntrySearch, OutcomeIssue, Resource, as_resource

# A tuple, not a set: a JSON value may be unhashable (a list), and ``in`` must not raise.
_BENIGN_SEVERITIES = ("information", "warning")


class Unusable(Enum):
    """Why a value holds no usable data."""

    OPERATION_OUTCOME = "an OperationOutcome"
    NOT_A_RESOURCE = "not a FHIR resource or Bundle"


@dataclass(frozen=True, slots=True)
class Flattened:
    resources: list[Resource]
    skipped: int
    """Bundle entries with no resource object."""
    next_url: str | None
    """Bundle.link[next], as given (possibly relative)."""
    error_outcome: bool
    """An OperationOutcome with errors travelled alongside the resources."""


def _is_error_outcome(outcome: Resource) -> bool:
    # Only an outcome that plainly says information/warning is harmless; a malformed one
    # may be hiding a failure, so it counts as an error.
    issues = outcome.issue
    if not isinstance(issues, list) or not issues:
        return True
    return not all(
        isinstance(issue, OutcomeIssue) and issue.severity in _BENIGN_SEVERITIES for issue in issues
    )


def next_link(bundle: Resource) -> str | None:
    links = bundle.link
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, BundleLink) and link.relation == "next":
            url = link.url
            return url if isinstance(url, str) and url else None
    return None


def _flatten_bundle(bundle: Resource) -> Flattened | Unusable:
    entries = bundle.entry
    if entries is None:
        return Flattened([], 0, next_link(bundle), False)
    if not isinstance(entries, list):
        return Unusable.NOT_A_RESOURCE
    resources: list[Resource] = []
    skipped = 0
    error_outcome = False
    for entry in entries:
        if not isinstance(entry, BundleEntry) or not isinstance(entry.resource, Resource):
            skipped += 1
            continue
        resource, search = entry.resource, entry.search
        if resource.resourceType == "OperationOutcome":
            error_outcome = error_outcome or _is_error_outcome(resource)
        elif not (isinstance(search, EntrySearch) and search.mode == "outcome"):
            resources.append(resource)
    if error_outcome and not resources:
        return Unusable.OPERATION_OUTCOME
    return Flattened(resources, skipped, next_link(bundle), error_outcome)


def flatten(value: Any) -> Flattened | Unusable:
    """A Bundle's entry resources (outcome entries skipped), or a single resource as one item.

    ``value`` is a decoded ``Resource`` or plain JSON (a page from the FHIR server, a request
    decoded by the generic path), which is read as a ``Resource`` first.

    OperationOutcome resources are never data: a bare one, or a Bundle holding nothing but
    outcomes with errors, is ``Unusable.OPERATION_OUTCOME``. Anything that is not a JSON object
    with a ``resourceType``, or a Bundle whose ``entry`` is not an array, is
    ``Unusable.NOT_A_RESOURCE``.
    """
    resource = as_resource(value)
    if resource is None:
        return Unusable.NOT_A_RESOURCE
    resource_type = resource.resourceType
    if resource_type == "Bundle":
        return _flatten_bundle(resource)
    if resource_type == "OperationOutcome":
        return Unusable.OPERATION_OUTCOME
    if not isinstance(resource_type, str) or not resource_type:
        return Unusable.NOT_A_RESOURCE
    return Flattened([resource], 0, None, False)
