"""Fetches from the FHIR server, each bounded by the caller's deadline; run in worker threads.

Workers return outcomes instead of raising, so the gathering thread decides what a failure
means; any exception from an injected client counts as a failed fetch, never a crash.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from ..protocol import Resource, as_resource
from ._bundles import Unusable, flatten
from ._client import FhirClient, FhirFetchError, FhirRefusedError, FhirTimeoutError
from ._medications import MedicationRef
from ._policy import FetchPolicy, FetchRefused

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Failure:
    timed_out: bool
    detail: str
    """Free of URLs and patient data: it is logged and may appear in notes."""
    refused: bool = False
    """The fetch policy did not allow it; ``detail`` says why."""


@dataclass(frozen=True, slots=True)
class Fetched:
    resources: list[Resource]
    pages: int
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FetchPlan:
    """What every fetch of one gather call shares."""

    client: FhirClient
    fhir_server: str
    bearer: str | None
    deadline: float
    """``time.monotonic()`` value after which nothing is worth waiting for."""
    policy: FetchPolicy


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return scheme, (parts.hostname or ""), parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None


def same_origin(url: str, base: str) -> bool:
    """The bearer token only ever goes to the origin the client named as its fhirServer."""
    origin = _origin(url)
    return origin is not None and origin[1] != "" and origin == _origin(base)


def _get(plan: FetchPlan, url: str) -> Any | Failure:
    try:
        plan.policy.check_url(url)
    except FetchRefused as exc:
        return Failure(False, str(exc), refused=True)
    remaining = plan.deadline - time.monotonic()
    if remaining <= 0:
        return Failure(True, "timed out")
    try:
        return plan.client.get_json(
            url, bearer=plan.bearer, timeout_s=remaining, policy=plan.policy
        )
    except FhirTimeoutError:
        return Failure(True, "timed out")
    except FhirRefusedError as exc:
        return Failure(False, str(exc) or "not allowed", refused=True)
    except FhirFetchError as exc:
        return Failure(False, str(exc) or "fetch failed")
    except Exception as exc:  # an injected client's bug must not become a 500
        return Failure(False, f"client error ({type(exc).__name__})")


def _page_failure(unusable: Unusable) -> Failure:
    return Failure(False, f"returned {unusable.value}")


def fetch_key(
    plan: FetchPlan, key: str, url: str, *, page_cap: int, max_entries: int
) -> Fetched | Failure:
    """One key's resources, following Bundle.link[next] on the same origin up to ``page_cap``."""
    resources: list[Resource] = []
    notes: list[str] = []
    pages = 0
    next_url: str | None = url
    while next_url is not None:
        if pages >= page_cap:
            notes.append(f"prefetch '{key}': stopped at the page cap of {page_cap} pages")
            break
        page = _get(plan, next_url)
        if isinstance(page, Failure):
            return page
        pages += 1
        flat = flatten(page)
        if isinstance(flat, Unusable):
            return _page_failure(flat)
        resources.extend(flat.resources)
        if flat.error_outcome:
            notes.append(f"prefetch '{key}': the FHIR server sent an error OperationOutcome too")
        if len(resources) > max_entries or (len(resources) == max_entries and flat.next_url):
            del resources[max_entries:]
            notes.append(f"prefetch '{key}' capped at {max_entries} resources")
            break
        next_url = _follow(flat.next_url, next_url, plan.fhir_server, key, notes)
    return Fetched(resources, pages, tuple(notes))


def _follow(
    link: str | None, current: str, fhir_server: str, key: str, notes: list[str]
) -> str | None:
    if link is None:
        return None
    try:
        target = urljoin(current, link)
    except ValueError:
        target = ""
    if not same_origin(target, fhir_server):
        notes.append(f"prefetch '{key}': next page is not on the FHIR server, not followed")
        return None
    return target


def medication_url(ref: MedicationRef, fhir_server: str) -> str | None:
    """Where to read a referenced Medication; None when it lives on another server."""
    if ref.base is None:
        return f"{fhir_server}/{ref.path}"
    return f"{ref.base}/{ref.path}" if same_origin(ref.base, fhir_server) else None


def fetch_medication(plan: FetchPlan, url: str) -> Resource | Failure:
    fetched = _get(plan, url)
    if isinstance(fetched, Failure):
        return fetched
    resource = as_resource(fetched)
    if resource is None or resource.resourceType != "Medication":
        return Failure(False, "not a Medication")
    return resource
