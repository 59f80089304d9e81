"""Prefetch, FHIR fallback and referenced Medications → ``GatheredData`` for one hook call."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any, Literal, NoReturn

from .. import metrics
from .._logging import get_logger
from ..blocking import WouldBlock
from ..protocol import BadRequest, DataUnavailable, HookRequest, Issue, Resource
from ._adapt import Target, local_sort, query_value, resource_label, target_of, with_param
from ._bundles import Flattened, Unusable, flatten
from ._client import FhirClient
from ._drafts import Drafts, draft_orders
from ._fetch import (
    Failure,
    Fetched,
    FetchPlan,
    KeyFetch,
    fetch_key,
    fetch_medication,
    medication_url,
)
from ._medications import MedicationRef, MedicationScan
from ._memory import NOTHING, Learnt, ServerMemory
from ._patient import PatientFilter
from ._policy import OPEN, FetchPolicy, FetchRefused, parse_origin
from ._scheduler import FetchScheduler
from ._server import DEFAULT_SERVER_OPTIONS, DISPENSABLE_RESOURCES, FhirServerOptions
from ._templates import render_template

Source = Literal["prefetch", "null", "fhir", "unavailable", "unsupported"]
KnownFrom = Literal["server", "memory", "profile"]

NO_SERVER = "no prefetch and no fhirServer"
SERVER_FAILED = "FHIR server failed"
SERVER_TIMED_OUT = "FHIR server timed out"
SERVER_UNSUPPORTED = "FHIR server does not support the resource type"
OUTCOME = "prefetch returned an OperationOutcome"
NOT_A_RESOURCE = "prefetch value is not a FHIR resource or Bundle"
UNRENDERABLE = "prefetch template could not be rendered from the context"


# Shared by every request: threads are created on demand and reused, so a fallback costs no
# thread start. Each FHIR server may use ``host_concurrency`` of them at a time (a setting);
# its other fetches wait in its own queue without holding a thread.
FETCH_THREADS = 128
DEFAULT_HOST_CONCURRENCY = 16
_SCHEDULERS: dict[int, FetchScheduler] = {}
_SCHEDULERS_LOCK = threading.Lock()


def fetch_scheduler(host_concurrency: int = DEFAULT_HOST_CONCURRENCY) -> FetchScheduler:
    """The process's fetch threads, limited to ``host_concurrency`` per FHIR server."""
    with _SCHEDULERS_LOCK:
        scheduler = _SCHEDULERS.get(host_concurrency)
        if scheduler is None:
            scheduler = FetchScheduler(max_workers=FETCH_THREADS, per_host=host_concurrency)
            _SCHEDULERS[host_concurrency] = scheduler
        return scheduler


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
    """Per key: "prefetch", "null", "fhir", "unavailable" (an optional key that failed) or
    "unsupported" (the FHIR server does not have the type)."""


@dataclass(slots=True)
class _Tally:
    """Metrics and log lines of the part of a call that may run twice.

    A call made on the event loop (``offline``) that turns out to need the FHIR server raises
    ``WouldBlock`` and is run again in a worker thread: what the first attempt would have
    counted is kept here and dropped, so every prefetch key, every dropped resource, is counted
    once per call. From ``commit`` on, effects happen at once.
    """

    pending: list[Callable[[], Any]] = field(default_factory=list)
    live: bool = False

    def __call__(self, effect: Callable[[], Any]) -> None:
        if self.live:
            effect()
        else:
            self.pending.append(effect)

    def commit(self) -> None:
        self.live = True
        pending, self.pending = self.pending, []
        for effect in pending:
            effect()

    def discard(self) -> None:
        self.pending.clear()


_KNOWN_FROM_NOTES: dict[KnownFrom, str] = {
    "server": "the FHIR server does not support {type}",
    "memory": "the FHIR server does not support {type} (learnt from an earlier call)",
    "profile": "the client's profile says its FHIR server has no {type}",
}


@dataclass(slots=True)
class _Collected:
    """Mutable state of one gather call; only the calling thread touches it."""

    order: tuple[str, ...]
    """The prefetch keys, in template order."""
    patient: PatientFilter
    tally: _Tally = field(default_factory=_Tally)
    optional: frozenset[str] = frozenset()
    """Keys the rules can do without: unavailable means "unknown", never a 412."""
    resources: dict[str, list[Resource]] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    key_notes: dict[str, list[str]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)
    medication_notes: dict[str, str] = field(default_factory=dict)

    def note(self, key: str, text: str) -> None:
        self.key_notes.setdefault(key, []).append(text)

    def fail(self, key: str, reason: str) -> None:
        """A key whose data cannot be had: a 412 unless the rules can do without it."""
        if key in self.optional:
            self.accept(key, [], "unavailable")
            self.note(key, f"prefetch '{key}' unavailable ({reason}): treated as unknown")
        else:
            self.unavailable[key] = reason

    def unsupported(self, key: str, resource_type: str, known_from: KnownFrom) -> None:
        """A key of a type the rules can do without, which the FHIR server does not have."""
        self.accept(key, [], "unsupported")
        why = _KNOWN_FROM_NOTES[known_from].format(type=resource_type)
        self.note(key, f"prefetch '{key}' absent: {why}; taken as no data")
        self.tally(metrics.FHIR_UNSUPPORTED.labels(resource_label(resource_type), known_from).inc)

    def accept(self, key: str, resources: list[Resource], source: Source) -> None:
        """Keep the key's resources, less any about another patient than the call's."""
        others = self.patient.others(resources)
        if others:
            if source == "prefetch" and any(r.resourceType == "Patient" for r in others):
                raise BadRequest(
                    f"prefetch.{key} holds a Patient whose id is not context.patientId",
                    f"prefetch.{key}",
                )
            dropped = self.patient.drop(resources, others)
            self.note(key, f"prefetch '{key}': dropped {dropped} resource(s) about another patient")
            self.tally(partial(PatientFilter.count, others))
            self.tally(
                partial(
                    _log.warning, "gathering.other_patient", key=key, source=source, dropped=dropped
                )
            )
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
    count = collected.tally
    if key not in prefetch:
        collected.absent.append(key)
        count(metrics.PREFETCH.labels(key, "miss").inc)
        return
    value = prefetch[key]
    if value is None:
        collected.accept(key, [], "null")
        count(metrics.PREFETCH.labels(key, "null").inc)
        return
    flat = flatten(value)
    if isinstance(flat, Unusable):
        collected.fail(key, OUTCOME if flat is Unusable.OPERATION_OUTCOME else NOT_A_RESOURCE)
        count(metrics.PREFETCH.labels(key, "miss").inc)
        return
    count(metrics.PREFETCH.labels(key, "hit").inc)
    resources = flat.resources
    if len(resources) > max_entries:
        del resources[max_entries:]  # our own list: the caller's Bundle is untouched
        collected.note(key, f"prefetch '{key}' capped at {max_entries} resources")
    _prefetch_notes(key, flat, collected)
    collected.accept(key, resources, "prefetch")


def _known_unsupported(
    resource_type: str, server: FhirServerOptions, learnt: Learnt
) -> KnownFrom | None:
    if resource_type in server.skip_resources:
        return "profile"
    if resource_type in learnt.unsupported:
        return "memory"
    return None


def _page_size(sent: str | None, server: FhirServerOptions, learnt: int | None) -> str | None:
    """The ``_count`` to send: the profile's page size (else the template's), no larger than
    what the server is known to take."""
    wanted = str(server.page_size) if server.page_size is not None else sent
    if learnt is None or wanted is None:
        return wanted
    try:
        return str(min(int(wanted), learnt))
    except ValueError:
        return str(learnt)


def _adapted(
    key: str, url: str, target: Target | None, server: FhirServerOptions, learnt: Learnt
) -> tuple[KeyFetch, str | None]:
    """The key's search as this server takes it, and a note when it is not sorted there."""
    if target is None or not target.search:
        return KeyFetch(key, url, target), None
    kind = target.resource_type
    count = _page_size(query_value(url, "_count"), server, learnt.page_sizes.get(kind))
    if count is not None:
        url = with_param(url, "_count", count)
    sort = query_value(url, "_sort")
    if sort is None or (server.sort and kind not in learnt.unsorted):
        return KeyFetch(key, url, target), None
    local = local_sort(sort)
    why = "the client's profile" if not server.sort else "the FHIR server does not support it"
    note = f"prefetch '{key}': _sort not sent ({why})" + (", sorted here" if local else "")
    return KeyFetch(key, with_param(url, "_sort", None), target, local), note


def _fetches_a_key(
    request: HookRequest,
    templates: Mapping[str, str],
    absent: Sequence[str],
    server: FhirServerOptions,
    learnt: Learnt,
) -> bool:
    """Whether an absent key will be fetched (one the server is known to lack will not)."""
    if request.fhir_server is None:
        return False
    for key in absent:
        target = target_of(templates[key])
        if (
            target is None
            or target.resource_type not in DISPENSABLE_RESOURCES
            or _known_unsupported(target.resource_type, server, learnt) is None
        ):
            return True
    return False


def _plan_fetches(
    request: HookRequest,
    templates: Mapping[str, str],
    collected: _Collected,
    server: FhirServerOptions,
    learnt: Learnt,
) -> dict[str, KeyFetch]:
    """What to fetch for the absent keys, as this server takes it. Keys that cannot be fetched
    are marked unavailable; keys of a type the server is known to lack are "no data"."""
    fetches: dict[str, KeyFetch] = {}
    for key in collected.absent:
        if request.fhir_server is None:
            collected.fail(key, NO_SERVER)
            continue
        rendered = render_template(templates[key], request.context)
        if rendered is None:
            collected.fail(key, UNRENDERABLE)
            continue
        target = target_of(rendered)
        known = _known_unsupported(target.resource_type, server, learnt) if target else None
        if target is not None and known is not None:
            if target.resource_type in DISPENSABLE_RESOURCES:
                collected.unsupported(key, target.resource_type, known)
                continue
            # A profile may not skip what the rules need (its loader says so): ask anyway.
            collected.tally(
                partial(_log.warning, "gathering.skip_ignored", key=key, type=target.resource_type)
            )
        url = f"{request.fhir_server}/{rendered.lstrip('/')}"
        fetches[key], note = _adapted(key, url, target, server, learnt)
        if note:
            collected.note(key, note)
    return fetches


# --- FHIR fallback --------------------------------------------------------------------------


_EXPIRED = partial(Failure, True, "deadline passed before the fetch could start")


def _outcome(failure: Failure) -> str:
    if failure.refused:
        return "refused"
    if failure.unsupported:
        return "unsupported"
    return "timeout" if failure.timed_out else "failed"


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
    scheduler: FetchScheduler
    host: str
    medications_known: KnownFrom | None = None
    """Known not to be on the server: Medication references are not read."""
    pending: dict[Future[Any], tuple[str, str]] = field(default_factory=dict)
    requested: set[str] = field(default_factory=set)
    targets: dict[str, Target | None] = field(default_factory=dict)
    pages: dict[str, int] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)

    def submit_key(self, fetch: KeyFetch) -> None:
        task = partial(
            fetch_key, self.plan, fetch, page_cap=self.page_cap, max_entries=self.max_entries
        )
        self.targets[fetch.key] = fetch.target
        self.pending[self._submit(task)] = ("key", fetch.key)

    def _submit(self, task: Callable[[], Fetched | Resource | Failure]) -> Future[Any]:
        return self.scheduler.submit(
            self.host, self.plan.deadline, partial(_shielded, task), _EXPIRED
        )

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
            elif self.medications_known is not None:
                _medication_unsupported(ref.key, self.medications_known, self.collected)
            else:
                future = self._submit(partial(fetch_medication, self.plan, url))
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
            metrics.FHIR_FALLBACK.labels(_outcome(result)).inc()
            target = self.targets.get(key)
            if result.unsupported and target is not None:
                self._unsupported(key, target.resource_type)
            elif result.refused:
                self.collected.fail(key, result.detail)
            else:
                self.collected.fail(key, SERVER_TIMED_OUT if result.timed_out else SERVER_FAILED)
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

    def _unsupported(self, key: str, resource_type: str) -> None:
        """The server said it does not have the key's type: no data when the rules can do
        without it (remembered), else a 412 that says so.

        Only this answer makes ``medicationStatements`` "no data". A server error or a timeout
        on it stays a 412 (``fail``; it is not an optional key): a statement may be the only
        record of a calcineurin inhibitor or a magnesium supplement, and losing it silently
        could change a card. A server without the type has no such record to lose."""
        if resource_type not in DISPENSABLE_RESOURCES:
            self.collected.fail(key, SERVER_UNSUPPORTED)
            return
        self._learn_unsupported(resource_type)
        self.collected.unsupported(key, resource_type, "server")

    def _learn_unsupported(self, resource_type: str) -> None:
        if self.plan.memory is not None:
            self.plan.memory.learn_unsupported(self.plan.fhir_server, resource_type)
        metrics.FHIR_ADAPTATIONS.labels("unsupported_type", resource_label(resource_type)).inc()

    def _medication_done(self, key: str, result: Resource | Failure) -> None:
        if isinstance(result, Failure):
            metrics.FHIR_FALLBACK.labels(_outcome(result)).inc()
            if result.unsupported:
                if self.medications_known is None:  # learnt once, whatever else was in flight
                    self.medications_known = "server"
                    self._learn_unsupported("Medication")
                _medication_unsupported(key, "server", self.collected)
            else:
                self.collected.medication_notes[key] = (
                    f"{key} could not be resolved: {result.detail}"
                )
            return
        metrics.FHIR_FALLBACK.labels("ok").inc()
        self.scan.index.setdefault(key, result)

    def _abandon_pending(self) -> None:
        # Running fetches end by the same deadline on their own; queued ones never start.
        failed_already = bool(self.collected.unavailable)
        for future, (kind, name) in self.pending.items():
            future.cancel()
            if kind == "medication":
                metrics.FHIR_FALLBACK.labels("timeout").inc()
                self.collected.medication_notes[name] = f"{name} could not be resolved: timed out"
            elif not failed_already:  # after a failure the rest were merely not waited for
                metrics.FHIR_FALLBACK.labels("timeout").inc()
                self.collected.fail(name, SERVER_TIMED_OUT)
                self.details[name] = "deadline passed"
        self.pending.clear()


def _medication_unsupported(key: str, known_from: KnownFrom, collected: _Collected) -> None:
    why = _KNOWN_FROM_NOTES[known_from].format(type="Medication")
    collected.medication_notes[key] = f"{key} could not be resolved: {why}"
    collected.tally(metrics.FHIR_UNSUPPORTED.labels("Medication", known_from).inc)


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
    fetches: Mapping[str, KeyFetch],
    plan: FetchPlan,
    collected: _Collected,
    scan: MedicationScan,
    *,
    page_cap: int,
    max_entries: int,
    started: float,
    scheduler: FetchScheduler,
    medications_known: KnownFrom | None,
) -> None:
    try:
        plan.policy.check_server(plan.fhir_server)
    except FetchRefused as exc:
        _refuse_server(str(exc), fetches, collected, scan, started)
    origin = parse_origin(plan.fhir_server)
    host = origin.key if origin is not None else plan.fhir_server
    run = _FetchRun(
        plan, page_cap, max_entries, collected, scan, scheduler, host, medications_known
    )
    for fetch in fetches.values():
        run.submit_key(fetch)
    run.submit_medications()
    run.run()
    if collected.unavailable:
        _raise_unavailable(collected, run.details, started)
    _log.info(
        "gathering.fhir_fallback",
        keys=list(fetches),
        pages=run.pages,
        medications_requested=len(run.requested),
        medications_unresolved=len(scan.missing()),
        ms=round((time.monotonic() - started) * 1000, 2),
    )


def _refuse_server(
    reason: str,
    fetches: Mapping[str, KeyFetch],
    collected: _Collected,
    scan: MedicationScan,
    started: float,
) -> None:
    """The fhirServer may not be fetched from: every key it was needed for is a 412 (an optional
    key is "unknown" instead)."""
    metrics.FHIR_FALLBACK.labels("refused").inc()
    for ref in scan.missing():
        collected.medication_notes[ref.key] = f"{ref.key} could not be resolved: {reason}"
    for key in fetches:
        collected.fail(key, reason)
    if collected.unavailable:
        _raise_unavailable(collected, {}, started)


def _drafts(request: HookRequest, collected: _Collected, cap: int) -> tuple[Drafts, list[str]]:
    """The draft orders, without any about another patient, and their notes."""
    drafts = draft_orders(request.context, cap)
    notes = list(drafts.notes)
    others = collected.patient.others(drafts.resources)
    if others:
        dropped = collected.patient.drop(drafts.resources, others)
        notes.append(f"draftOrders: dropped {dropped} resource(s) about another patient")
        collected.tally(partial(PatientFilter.count, others))
        collected.tally(
            partial(
                _log.warning,
                "gathering.other_patient",
                key="draftOrders",
                source="context",
                dropped=dropped,
            )
        )
    return drafts, notes


@dataclass(frozen=True, slots=True)
class _Limits:
    timeout_s: float
    page_cap: int
    max_entries: int
    max_draft_orders: int
    host_concurrency: int


def gather(
    request: HookRequest,
    templates: Mapping[str, str],
    *,
    client: FhirClient,
    timeout_s: float,
    page_cap: int,
    max_entries: int,
    max_draft_orders: int,
    optional: frozenset[str] = frozenset(),
    offline: bool = False,
    policy: FetchPolicy = OPEN,
    host_concurrency: int = DEFAULT_HOST_CONCURRENCY,
    server: FhirServerOptions = DEFAULT_SERVER_OPTIONS,
    memory: ServerMemory | None = None,
) -> GatheredData:
    """The data for every key of ``templates``, or ``DataUnavailable`` naming what is missing.

    A prefetch value that JSON allows but FHIR does not (a string, a number, an array, an
    object without ``resourceType``, a Bundle whose ``entry`` is not an array) makes its key
    unavailable: the 412 names ``prefetch.<key>`` and says the value is not a FHIR resource.
    It is never a 400, so one answer lists every key the client must fix or let us fetch.

    Absent keys, and referenced Medications missing from prefetch, are fetched concurrently
    under one deadline of ``timeout_s`` from the start of this call. A Medication that cannot
    be resolved only adds a note.

    Keys in ``optional`` are data the rules can do without: absent with no fhirServer, or
    failing, they are empty and noted, never a 412.

    The fallback fits the FHIR server: ``server`` (the client's profile) sets the page size,
    whether to send ``_sort`` and the resource types it lacks; ``memory`` keeps what the
    server's refusals taught (a type it does not have, a ``_count`` too large, a ``_sort`` it
    does not support) for the next calls. A refused ``_count`` or ``_sort`` is asked again once
    without it, within the same deadline. A key whose type the server does not have is "no
    data" (noted, counted in ``cds_fhir_unsupported_total``) when the type is one of
    ``DISPENSABLE_RESOURCES``, else a 412 saying the server does not support it.

    With ``offline`` set, a call that would need the FHIR server raises ``WouldBlock``
    before any request is made, so the caller can move it off the event loop; it counts
    nothing then (the call is counted when it runs again).

    ``policy`` says where this call may fetch (a ``fhirServer`` it refuses makes every key that
    needed fetching a 412 naming the reason); at most ``host_concurrency`` fetches run at once
    against one FHIR server, across all calls.

    One patient per call: a prefetched Patient whose id is not ``context.patientId`` is a 400;
    any other resource whose ``subject`` or ``patient`` names another Patient is dropped, with
    a note, a log line and ``cds_other_patient_resources_total``.
    """
    collected = _Collected(
        order=tuple(templates), optional=optional, patient=PatientFilter(request.patient_id)
    )
    limits = _Limits(timeout_s, page_cap, max_entries, max_draft_orders, host_concurrency)
    try:
        return _gather(
            request, templates, collected, limits, client, offline, policy, server, memory
        )
    except WouldBlock:
        collected.tally.discard()  # counted when the call runs again, off the event loop
        raise
    finally:
        collected.tally.commit()


def _gather(
    request: HookRequest,
    templates: Mapping[str, str],
    collected: _Collected,
    limits: _Limits,
    client: FhirClient,
    offline: bool,
    policy: FetchPolicy,
    server: FhirServerOptions,
    memory: ServerMemory | None,
) -> GatheredData:
    started = time.monotonic()
    prefetch = request.prefetch or {}
    absent = [key for key in templates if key not in prefetch]
    learnt = (
        memory.recall(request.fhir_server)
        if memory is not None and absent and request.fhir_server is not None
        else NOTHING
    )
    if offline and _fetches_a_key(request, templates, absent, server, learnt):
        raise WouldBlock  # before any work: the call starts again in a worker thread
    for key in templates:
        _take_prefetch(key, prefetch, collected, limits.max_entries)
    fetches = _plan_fetches(request, templates, collected, server, learnt)
    if collected.unavailable:
        _raise_unavailable(collected, {}, started)
    drafts, draft_notes = _drafts(request, collected, limits.max_draft_orders)
    scan = MedicationScan()
    for resources in collected.resources.values():
        scan.add(resources)
    scan.add(drafts.resources)
    medications_known = _known_unsupported("Medication", server, learnt)
    wants_medications = bool(scan.missing()) and medications_known is None
    if offline and request.fhir_server is not None and (fetches or wants_medications):
        raise WouldBlock
    collected.tally.commit()
    if request.fhir_server is None:
        _unresolved_without_server(scan.missing(), collected)
    elif fetches or wants_medications:
        bearer = request.fhir_authorization.access_token if request.fhir_authorization else None
        plan = FetchPlan(
            client, request.fhir_server, bearer, started + limits.timeout_s, policy, memory
        )
        _fallback(
            fetches,
            plan,
            collected,
            scan,
            page_cap=limits.page_cap,
            max_entries=limits.max_entries,
            started=started,
            scheduler=fetch_scheduler(limits.host_concurrency),
            medications_known=medications_known,
        )
    elif medications_known is not None:
        for ref in scan.missing():
            _medication_unsupported(ref.key, medications_known, collected)
    return GatheredData(
        resources=MappingProxyType({key: collected.resources[key] for key in templates}),
        medications=MappingProxyType(scan.index),
        draft_orders=drafts.resources,
        notes=_notes(templates, collected, draft_notes, scan),
        sources=MappingProxyType({key: collected.sources[key] for key in templates}),
    )
