"""Fetches from the FHIR server, each bounded by the caller's deadline; run in worker threads.

Workers return outcomes instead of raising, so the gathering thread decides what a failure
means; any exception from an injected client counts as a failed fetch, never a crash.

A search the server refuses for its ``_count`` or its ``_sort`` is asked again, once per kind,
within the same deadline, and what was learnt is remembered for the server (``_memory``); a
search or read of a type the server does not have comes back as an ``unsupported`` failure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urljoin, urlsplit

from .. import metrics
from ..protocol import Resource, as_resource
from ._adapt import (
    UNSUPPORTED,
    LocalSort,
    Rejection,
    Target,
    classify,
    local_sort,
    query_value,
    resource_label,
    sort_resources,
    with_param,
)
from ._bundles import Unusable, flatten
from ._client import (
    FhirClient,
    FhirFetchError,
    FhirRefusedError,
    FhirStatusError,
    FhirTimeoutError,
)
from ._medications import MedicationRef
from ._memory import ServerMemory
from ._policy import FetchPolicy, FetchRefused

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Failure:
    timed_out: bool
    detail: str
    """Free of URLs and patient data: it is logged and may appear in notes."""
    refused: bool = False
    """The fetch policy did not allow it; ``detail`` says why."""
    status: int | None = None
    """The HTTP status of a non-2xx answer."""
    codes: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()
    """The issue codes and texts of its OperationOutcome: read, never logged (a server may
    echo the patient id)."""
    unsupported: bool = False
    """The server does not have the resource type asked for."""


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
    memory: ServerMemory | None = None
    """Where what a rejected request taught is kept for the next calls (None: not kept)."""


@dataclass(frozen=True, slots=True)
class KeyFetch:
    """One prefetch key to fetch: the URL as adapted to the server, and what it asks for."""

    key: str
    url: str
    target: Target | None
    """What the URL asks for; None when it is not recognisably a FHIR read or search."""
    sort: LocalSort | None = None
    """``_sort`` was left out of ``url``: the fetched resources are sorted so."""


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
    except FhirStatusError as exc:
        return Failure(
            False, str(exc) or "fetch failed", status=exc.status, codes=exc.codes, texts=exc.texts
        )
    except FhirFetchError as exc:
        return Failure(False, str(exc) or "fetch failed")
    except Exception as exc:  # an injected client's bug must not become a 500
        return Failure(False, f"client error ({type(exc).__name__})")


def _page_failure(unusable: Unusable) -> Failure:
    return Failure(False, f"returned {unusable.value}")


def _retry(
    plan: FetchPlan, fetch: KeyFetch, url: str, rejection: Rejection, notes: list[str]
) -> tuple[str, LocalSort | None]:
    """The URL to ask again with, learnt and counted; and the local sort if ``_sort`` went."""
    target = fetch.target
    assert target is not None  # only searches are retried
    label = resource_label(target.resource_type)
    sort: LocalSort | None = None
    if rejection.page_size is not None:
        sent = query_value(url, "_count")
        url = with_param(url, "_count", str(rejection.page_size))
        if plan.memory is not None:
            plan.memory.learn_page_size(plan.fhir_server, target.resource_type, rejection.page_size)
        metrics.FHIR_ADAPTATIONS.labels("page_size", label).inc()
        notes.append(
            f"prefetch '{fetch.key}': the FHIR server refused _count={sent}; "
            f"asked again with _count={rejection.page_size}"
        )
    if rejection.drop_sort:
        sort = local_sort(query_value(url, "_sort"))
        url = with_param(url, "_sort", None)
        if plan.memory is not None:
            plan.memory.learn_unsorted(plan.fhir_server, target.resource_type)
        metrics.FHIR_ADAPTATIONS.labels("sort", label).inc()
        notes.append(
            f"prefetch '{fetch.key}': the FHIR server does not support _sort; asked again "
            "without it" + (", sorted here" if sort else "")
        )
    return url, sort


def _first_page(
    plan: FetchPlan, fetch: KeyFetch, notes: list[str]
) -> tuple[Any, str, LocalSort | None] | Failure:
    """The first page, asking again (once for the page size, once for the sort) when the server
    refuses either; the URL that worked and the local sort it needs."""
    url, sort = fetch.url, fetch.sort
    tried: set[str] = set()
    while True:
        page = _get(plan, url)
        if not isinstance(page, Failure):
            return page, url, sort
        if fetch.target is None or page.status is None:
            return page
        verdict = classify(page.status, page.codes, page.texts, url, fetch.target)
        if verdict == UNSUPPORTED:
            return replace(page, unsupported=True)
        if not isinstance(verdict, Rejection):
            return page
        kinds = {"page_size"} if verdict.page_size is not None else set()
        kinds |= {"sort"} if verdict.drop_sort else set()
        if kinds & tried:
            return page  # refused again for what was already changed: a failure
        tried |= kinds
        url, dropped = _retry(plan, fetch, url, verdict, notes)
        sort = dropped or sort


def fetch_key(
    plan: FetchPlan, fetch: KeyFetch, *, page_cap: int, max_entries: int
) -> Fetched | Failure:
    """One key's resources, following Bundle.link[next] on the same origin up to ``page_cap``."""
    key = fetch.key
    notes: list[str] = []
    first = _first_page(plan, fetch, notes)
    if isinstance(first, Failure):
        return first
    page, current, sort = first
    resources: list[Resource] = []
    pages = 0
    while True:
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
        next_url = _follow(flat.next_url, current, plan.fhir_server, key, notes)
        if next_url is None:
            break
        if pages >= page_cap:
            notes.append(f"prefetch '{key}': stopped at the page cap of {page_cap} pages")
            break
        page, current = _get(plan, next_url), next_url
        if isinstance(page, Failure):
            return page
    if sort is not None:
        sort_resources(resources, sort)
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


_MEDICATION = Target("Medication", search=False)


def fetch_medication(plan: FetchPlan, url: str) -> Resource | Failure:
    fetched = _get(plan, url)
    if isinstance(fetched, Failure):
        verdict = classify(fetched.status, fetched.codes, fetched.texts, url, _MEDICATION)
        return replace(fetched, unsupported=True) if verdict == UNSUPPORTED else fetched
    resource = as_resource(fetched)
    if resource is None or resource.resourceType != "Medication":
        return Failure(False, "not a Medication")
    return resource
