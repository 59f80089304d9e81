"""Prefetch, FHIR fallback and referenced Medications → ``GatheredData`` for one hook call."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any, Literal, NoReturn

from .. import metrics
from .._logging import get_logger
from ..blocking import WouldBlock
from ..protocol import DataUnavailable, HookRequest, Issue, Resource
from ._bundles import Flattened, Unusable, flatten
from ._client import FhirClient
from ._drafts import draft_orders
from ._fetch import (
    Failure,
    Fetched,
    FetchPlan,
    fetch_key,
    fetch_medication,
    medication_url,
)
from ._medications import MedicationRef, MedicationScan
from ._templates import render_template

Source = Literal["prefetch", "null", "fhir"]

NO_SERVER = "no prefetch and no fhirServer"
SERVER_FAILED = "FHIR server failed"
SERVER_TIMED_OUT = "FHIR server timed out"
OUTCOME = "prefetch returned an OperationOutcome"
NOT_A_RESOURCE = "prefetch value is not a FHIR resource or Bundle"
UNRENDERABLE = "prefetch template could not be rendered from the context"

# Shared by every request: threads are created on demand and reused, so a fallback costs no
# thread start. Sized like the HTTP connection pool of ``RequestsFhirClient``.
_WORKERS = 32
_EXECUTOR = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="cds-fhir")

_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class GatheredData:
    """Everything one hook call needs from prefetch, the FHIR server and ``context``."""

    resources: Mapping[str, Sequence[Resource]]
    """Per prefetch key: the resources (Bundle entries flattened; null → empty)."""
    medications: Mapping[str, Resource]
    """``Medication/<id>`` → Medication, from prefetch bundles and fetched references."""
    draft_orders: Sequence[Resource]
    """``context.draftOrders`` resources, newest kept when capped."""
    notes: tuple[str, ...]
    """Trace notes without patient data."""
    sources: Mapping[str, str]
    """Per key: "prefetch", "null" or "fhir"."""


@dataclass(slots=True)
class _Collected:
    """Mutable state of one gather call; only the calling thread touches it."""

    order: tuple[str, ...]
    """The prefetch keys, in template order."""
    resources: dict[str, list[Resource]] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    key_notes: dict[str, list[str]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)
    medication_notes: dict[str, str] = field(default_factory=dict)

    def note(self, key: str, text: str) -> None:
        self.key_notes.setdefault(key, []).append(text)

    def accept(self, key: str, resources: list[Resource], source: Source) -> None:
        self.resources[key] = resources
        self.sources[key] = source


def _unavailable(reasons: Mapping[str, str]) -> DataUnavailable:
    distinct = set(reasons.values())
    if len(distinct) == 1:
        return DataUnavailable(list(reasons), distinct.pop())
    error = DataUnavailable(list(reasons), "data unavailable")
    # Mixed reasons: the one 412 still gives each key its own.
    error.issues = [
        Issue(f"{reason}: {key}", "not-found", "error", f"prefetch.{key}")
        for key, reason in reasons.items()
    ]
    return error


# --- prefetch -------------------------------------------------------------------------------


def _prefetch_notes(key: str, flat: Flattened, collected: _Collected) -> None:
    if flat.skipped:
        collected.note(key, f"prefetch '{key}': skipped {flat.skipped} entries without a resource")
    if flat.error_outcome:
        collected.note(key, f"prefetch '{key}' carried an error OperationOutcome alongside data")
    if flat.next_url is not None:
        collected.note(key, f"prefetch '{key}' has further pages that were not sent")


def _take_prefetch(
    key: str, prefetch: Mapping[str, Any], collected: _Collected, max_entries: int
) -> None:
    if key not in prefetch:
        collected.absent.append(key)
        metrics.PREFETCH.labels(key, "miss").inc()
        return
    value = prefetch[key]
    if value is None:
        collected.accept(key, [], "null")
        metrics.PREFETCH.labels(key, "null").inc()
        return
    flat = flatten(value)
    if isinstance(flat, Unusable):
        collected.unavailable[key] = (
            OUTCOME if flat is Unusable.OPERATION_OUTCOME else NOT_A_RESOURCE
        )
        metrics.PREFETCH.labels(key, "miss").inc()
        return
    metrics.PREFETCH.labels(key, "hit").inc()
    resources = flat.resources
    if len(resources) > max_entries:
        del resources[max_entries:]  # our own list: the caller's Bundle is untouched
        collected.note(key, f"prefetch '{key}' capped at {max_entries} resources")
    _prefetch_notes(key, flat, collected)
    collected.accept(key, resources, "prefetch")


def _fetch_urls(
    request: HookRequest, templates: Mapping[str, str], collected: _Collected
) -> dict[str, str]:
    """URLs for the absent keys; keys that cannot be fetched are marked unavailable."""
    urls: dict[str, str] = {}
    for key in collected.absent:
        if request.fhir_server is None:
            collected.unavailable[key] = NO_SERVER
            continue
        rendered = render_template(templates[key], request.context)
        if rendered is None:
            collected.unavailable[key] = UNRENDERABLE
        else:
            urls[key] = f"{request.fhir_server}/{rendered.lstrip('/')}"
    return urls


# --- FHIR fallback --------------------------------------------------------------------------


def _shielded(task: Callable[[], Fetched | Resource | Failure]) -> Any:
    try:
        return task()
    except Exception as exc:  # never let a worker's bug escape as a 500
        return Failure(False, f"internal error ({type(exc).__name__})")


@dataclass(slots=True)
class _FetchRun:
    """The concurrent fetches of one gather call, all under ``plan.deadline``."""

    plan: FetchPlan
    page_cap: int
    max_entries: int
    collected: _Collected
    scan: MedicationScan
    pending: dict[Future[Any], tuple[str, str]] = field(default_factory=dict)
    requested: set[str] = field(default_factory=set)
    pages: dict[str, int] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)

    def submit_key(self, key: str, url: str) -> None:
        task = partial(
            fetch_key, self.plan, key, url, page_cap=self.page_cap, max_entries=self.max_entries
        )
        future = _EXECUTOR.submit(_shielded, task)
        self.pending[future] = ("key", key)

    def submit_medications(self) -> None:
        for ref in self.scan.missing():
            if ref.key in self.requested:
                continue
            self.requested.add(ref.key)
            url = medication_url(ref, self.plan.fhir_server)
            if url is None:
                self.collected.medication_notes[ref.key] = (
                    f"{ref.key} could not be resolved: it is on another server"
                )
                continue
            future = _EXECUTOR.submit(_shielded, partial(fetch_medication, self.plan, url))
            self.pending[future] = ("medication", ref.key)

    def run(self) -> None:
        while self.pending and not self.collected.unavailable:
            remaining = self.plan.deadline - time.monotonic()
            if remaining <= 0:
                break
            done, _ = wait(self.pending, timeout=remaining, return_when=FIRST_COMPLETED)
            for future in done:
                kind, name = self.pending.pop(future)
                if kind == "key":
                    self._key_done(name, future.result())
                else:
                    self._medication_done(name, future.result())
        self._abandon_pending()

    def _key_done(self, key: str, result: Fetched | Failure) -> None:
        if isinstance(result, Failure):
            metrics.FHIR_FALLBACK.labels("timeout" if result.timed_out else "failed").inc()
            self.collected.unavailable[key] = (
                SERVER_TIMED_OUT if result.timed_out else SERVER_FAILED
            )
            self.details[key] = result.detail
            return
        metrics.FHIR_FALLBACK.labels("ok").inc()
        self.pages[key] = result.pages
        plural = "" if result.pages == 1 else "s"
        self.collected.note(
            key, f"prefetch '{key}' absent: fetched {result.pages} page{plural} from FHIR server"
        )
        for text in result.notes:
            self.collected.note(key, text)
        self.collected.accept(key, result.resources, "fhir")
        self.scan.add(result.resources)
        self.submit_medications()

    def _medication_done(self, key: str, result: Resource | Failure) -> None:
        if isinstance(result, Failure):
            metrics.FHIR_FALLBACK.labels("timeout" if result.timed_out else "failed").inc()
            self.collected.medication_notes[key] = f"{key} could not be resolved: {result.detail}"
            return
        metrics.FHIR_FALLBACK.labels("ok").inc()
        self.scan.index.setdefault(key, result)

    def _abandon_pending(self) -> None:
        # Running fetches end on their own per-request timeout; queued ones never start.
        failed_already = bool(self.collected.unavailable)
        for future, (kind, name) in self.pending.items():
            future.cancel()
            if kind == "medication":
                metrics.FHIR_FALLBACK.labels("timeout").inc()
                self.collected.medication_notes[name] = f"{name} could not be resolved: timed out"
            elif not failed_already:  # after a failure the rest were merely not waited for
                metrics.FHIR_FALLBACK.labels("timeout").inc()
                self.collected.unavailable[name] = SERVER_TIMED_OUT
                self.details[name] = "deadline passed"
        self.pending.clear()


# --- assembly -------------------------------------------------------------------------------


def _unresolved_without_server(missing: Sequence[MedicationRef], collected: _Collected) -> None:
    for ref in missing:
        collected.medication_notes[ref.key] = (
            f"{ref.key} could not be resolved: not in prefetch and no fhirServer"
        )


def _notes(
    templates: Mapping[str, str],
    collected: _Collected,
    draft_notes: Sequence[str],
    scan: MedicationScan,
) -> tuple[str, ...]:
    # Fixed order (template keys, drafts, medications by key) whatever order fetches finished.
    notes = [text for key in templates for text in collected.key_notes.get(key, ())]
    notes.extend(draft_notes)
    notes.extend(
        text for key, text in sorted(collected.medication_notes.items()) if key not in scan.index
    )
    if scan.unsupported:
        notes.append(
            f"{scan.unsupported} medicationReference(s) could not be resolved: "
            "not a Medication reference"
        )
    return tuple(notes)


def _raise_unavailable(
    collected: _Collected, details: Mapping[str, str], started: float
) -> NoReturn:
    # In template order, not the order concurrent fetches happened to fail in.
    reasons = {
        key: collected.unavailable[key] for key in collected.order if key in collected.unavailable
    }
    _log.warning(
        "gathering.unavailable",
        keys=list(reasons),
        reasons=reasons,
        details=dict(details),
        ms=round((time.monotonic() - started) * 1000, 2),
    )
    raise _unavailable(reasons)


def _fallback(
    urls: Mapping[str, str],
    plan: FetchPlan,
    collected: _Collected,
    scan: MedicationScan,
    *,
    page_cap: int,
    max_entries: int,
    started: float,
) -> None:
    run = _FetchRun(plan, page_cap, max_entries, collected, scan)
    for key, url in urls.items():
        run.submit_key(key, url)
    run.submit_medications()
    run.run()
    if collected.unavailable:
        _raise_unavailable(collected, run.details, started)
    _log.info(
        "gathering.fhir_fallback",
        keys=list(urls),
        pages=run.pages,
        medications_requested=len(run.requested),
        medications_unresolved=len(scan.missing()),
        ms=round((time.monotonic() - started) * 1000, 2),
    )


def gather(
    request: HookRequest,
    templates: Mapping[str, str],
    *,
    client: FhirClient,
    timeout_s: float,
    page_cap: int,
    max_entries: int,
    max_draft_orders: int,
    offline: bool = False,
) -> GatheredData:
    """The data for every key of ``templates``, or ``DataUnavailable`` naming what is missing.

    A prefetch value that JSON allows but FHIR does not (a string, a number, an array, an
    object without ``resourceType``, a Bundle whose ``entry`` is not an array) makes its key
    unavailable: the 412 names ``prefetch.<key>`` and says the value is not a FHIR resource.
    It is never a 400, so one answer lists every key the client must fix or let us fetch.

    Absent keys, and referenced Medications missing from prefetch, are fetched concurrently
    under one deadline of ``timeout_s`` from the start of this call. A Medication that cannot
    be resolved only adds a note.

    With ``offline`` set, a call that would need the FHIR server raises ``WouldBlock``
    before any request is made, so the caller can move it off the event loop.
    """
    started = time.monotonic()
    collected = _Collected(order=tuple(templates))
    prefetch = request.prefetch or {}
    for key in templates:
        _take_prefetch(key, prefetch, collected, max_entries)
    urls = _fetch_urls(request, templates, collected)
    if collected.unavailable:
        _raise_unavailable(collected, {}, started)
    drafts = draft_orders(request.context, max_draft_orders)
    scan = MedicationScan()
    for resources in collected.resources.values():
        scan.add(resources)
    scan.add(drafts.resources)
    if offline and request.fhir_server is not None and (urls or scan.missing()):
        raise WouldBlock
    if request.fhir_server is None:
        _unresolved_without_server(scan.missing(), collected)
    elif urls or scan.missing():
        bearer = request.fhir_authorization.access_token if request.fhir_authorization else None
        plan = FetchPlan(client, request.fhir_server, bearer, started + timeout_s)
        _fallback(
            urls,
            plan,
            collected,
            scan,
            page_cap=page_cap,
            max_entries=max_entries,
            started=started,
        )
    return GatheredData(
        resources=MappingProxyType({key: collected.resources[key] for key in templates}),
        medications=MappingProxyType(scan.index),
        draft_orders=drafts.resources,
        notes=_notes(templates, collected, drafts.notes, scan),
        sources=MappingProxyType({key: collected.sources[key] for key in templates}),
    )
