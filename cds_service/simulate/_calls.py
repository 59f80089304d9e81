"""One patient through the real service: a patient-view at ``--at``, then every order replayed.

Each call is a CDS Hooks request body, built from the patient's resources the way the EHR would
send it (every prefetch key filled in from the content's templates), decoded and evaluated by
exactly what the HTTP route runs: ``decode_hook_body`` and ``CdsService.hook``. Nothing of the
engine is copied here, so a change to the rules or the content is simulated as it will behave.

Order hooks: every MedicationRequest authored in the simulated period is ordered again, as a
draft, at its ``authoredOn``, against the chart as it was then (see ``_records``). Orders with
the same ``authoredOn`` are one ordering session: each is selected in turn (order-select, with
the session's earlier orders already in the basket), then all are signed together (one
order-sign). The session's ServiceRequests (a lab ordered with the drugs) are in
the basket too, after the medication orders.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import orjson

from .._logging import patient_hash
from ..blocking import WouldBlock
from ..pipeline import CdsService, HookResult
from ..protocol import SERVICES, ServiceError, decode_hook_body
from ..render import topic_of
from ._queries import Query, searchable
from ._records import Record
from ._tally import Tally, reason_of

USER_ID = b'"Practitioner/cds-simulate"'
SERVICE_FOR_HOOK = {service.hook: service.id for service in SERVICES.values()}
# Intents of a MedicationRequest that is an order (a proposal or plan is not ordered).
ORDER_INTENTS = frozenset({"order", "original-order", "reflex-order", "filler-order"})
_NOT_REPLAYED = frozenset({"entered-in-error", "draft"})
MedicationLookup = Callable[[str], bytes | None]


class SimulatedClock:
    """The service's clock, set to the moment each simulated call happens."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Version:
    """One content version: its service, its templates read as searches, and its clock."""

    index: int
    service: CdsService
    queries: tuple[Query, ...]
    bits: dict[str, int]
    """Prefetch key → the bit of a record's mask that says its codes match the key's filter."""
    clock: SimulatedClock
    hash_key: str
    tally: Tally = field(default_factory=Tally)


class Patient:
    """A patient's records, indexed once for every call made for them."""

    def __init__(self, patient_id: str, lines: Sequence[list[bytes]]) -> None:
        self.id = patient_id
        self.records = [Record(fields) for fields in lines]
        self.patient_raw: bytes | None = None
        self.by_kind: dict[str, list[Record]] = {}
        for record in self.records:
            if record.kind == "Patient":
                if self.patient_raw is None:
                    self.patient_raw = record.raw
                continue
            self.by_kind.setdefault(record.kind, []).append(record)
        self._candidates: dict[int, dict[str, list[Record]]] = {}

    def candidates(self, version: Version) -> dict[str, list[Record]]:
        """Per search key, the records of its type whose codes match (the same at every time)."""
        cached = self._candidates.get(version.index)
        if cached is None:
            cached = {}
            for query in version.queries:
                if query.read:
                    continue
                records = self.by_kind.get(query.resource_type, [])
                bit = version.bits.get(query.key)
                if bit is not None:
                    cached[query.key] = [r for r in records if r.mask >> bit & 1]
                else:
                    cached[query.key] = list(records) if searchable(query) else []
            self._candidates[version.index] = cached
        return cached

    def sessions(self, since: float, until: float) -> list[tuple[float, list[Record]]]:
        """The MedicationRequests ordered in ``[since, until]``, grouped by ``authoredOn``."""
        grouped: dict[float, list[Record]] = {}
        for record in self.by_kind.get("MedicationRequest", ()):
            at = record.known_at
            if (
                at is None
                or not since <= at <= until
                or record.id is None
                or record.status in _NOT_REPLAYED
                or (record.intent is not None and record.intent not in ORDER_INTENTS)
            ):
                continue
            grouped.setdefault(at, []).append(record)
        return sorted(grouped.items(), key=lambda item: item[0])

    def lab_orders(self, at: float) -> list[Record]:
        """ServiceRequests placed in the same session (the same ``authoredOn``)."""
        return [
            r
            for r in self.by_kind.get("ServiceRequest", ())
            if r.known_at == at and r.id is not None and r.status not in _NOT_REPLAYED
        ]


def _bundle(kind: bytes, entries: list[bytes], total: int | None) -> bytes:
    head = b'{"resourceType":"Bundle","type":' + kind
    if total is not None:
        head += b',"total":' + str(total).encode()
    return head + b',"entry":[' + b",".join(entries) + b"]}"


def prefetch(
    patient: Patient,
    version: Version,
    at: float,
    medications: MedicationLookup,
    *,
    exclude: frozenset[int] = frozenset(),
    draft_medications: Sequence[str] = (),
) -> bytes:
    """Every prefetch key as the FHIR server would answer it at ``at``."""
    candidates = patient.candidates(version)
    parts: list[bytes] = []
    extra_placed = False
    for query in version.queries:
        name = orjson.dumps(query.key)
        if query.read:
            found = patient.patient_raw if not query.not_applied else None
            parts.append(name + b":" + (found or b"null"))
            continue
        statuses = query.statuses
        items = [
            r
            for r in candidates[query.key]
            if (r.known_at is None or r.known_at <= at)
            and (not exclude or id(r) not in exclude)
            and (statuses is None or (r.status_at(at) if r.ended else r.status) in statuses)
        ]
        if query.newest_first:
            items.sort(key=lambda r: r.known_at or 0.0, reverse=True)
        if query.count is not None:
            del items[query.count :]
        entries = [r.entry_at(at) if r.ended else r.entry for r in items]
        wanted = [r.medication for r in items if r.medication]
        if not extra_placed and query.resource_type == "MedicationRequest":
            wanted += draft_medications
            extra_placed = True
        for reference in dict.fromkeys(wanted):
            if (raw := medications(reference)) is not None:
                entries.append(b'{"resource":' + raw + b',"search":{"mode":"include"}}')
        parts.append(name + b":" + _bundle(b'"searchset"', entries, len(items)))
    return b"{" + b",".join(parts) + b"}"


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


class Caller:
    """Makes the calls for one patient and one content version, and counts their answers."""

    def __init__(
        self,
        version: Version,
        patient: Patient,
        medications: MedicationLookup,
        cards_out: IO[bytes],
        *,
        with_detail: bool,
    ) -> None:
        self.version = version
        self.patient = patient
        self.medications = medications
        self.out = cards_out
        self.with_detail = with_detail
        self.fired: set[tuple[str, str]] = set()

    def call(self, hook: str, at: float, context: bytes, body_prefetch: bytes) -> HookResult | None:
        version = self.version
        tally = version.tally
        tally.calls[hook] += 1
        body = b"".join(
            (
                b'{"hook":"',
                hook.encode(),
                b'","hookInstance":"',
                str(uuid.uuid4()).encode(),
                b'","context":',
                context,
                b',"prefetch":',
                body_prefetch,
                b"}",
            )
        )
        version.clock.now = datetime.fromtimestamp(at, UTC)
        service_id = SERVICE_FOR_HOOK[hook]
        try:
            payload = decode_hook_body(body)
            try:
                return version.service.hook(service_id, payload, inline=True)
            except WouldBlock:
                return version.service.hook(service_id, payload)
        except ServiceError as exc:
            tally.errors[(hook, str(exc.status))] += 1
        except Exception as exc:  # what the HTTP route would answer with a 500
            tally.errors[(hook, type(exc).__name__)] += 1
        return None

    def record(
        self, hook: str, at: float, result: HookResult | None, orders: Sequence[str] = ()
    ) -> int:
        """Count and write the cards of one answer; returns how many were shown.

        Cards of topics in silent mode are counted and written too, marked ``silent``: they are
        what the topic would show once it goes live.
        """
        if result is None:
            return 0
        tally = self.version.tally
        cards: list[dict[str, Any]] = result.response["cards"]
        order_hashes = [patient_hash(self.version.hash_key, ref) for ref in orders]
        silent = [item.card for item in result.silent]
        for card, is_silent in [*((c, False) for c in cards), *((c, True) for c in silent)]:
            topic, indicator, summary = topic_of(card), str(card["indicator"]), str(card["summary"])
            (tally.silent if is_silent else tally.cards)[(hook, topic, indicator)] += 1
            tally.reasons[(topic, indicator, reason_of(summary))] += 1
            self.fired.add((topic, indicator))
            line: dict[str, Any] = {
                "patient": result.patient_hash,
                "hook": hook,
                "at": _iso(at),
            }
            if order_hashes:
                line["orders"] = order_hashes
            line.update(topic=topic, indicator=indicator, summary=summary)
            if is_silent:
                line["silent"] = True
            if self.with_detail:
                line["detail"] = card.get("detail")
            self.out.write(orjson.dumps(line) + b"\n")
        return len(cards)

    def finish(self) -> None:
        tally = self.version.tally
        for key in self.fired:
            tally.patients[key] += 1
        for topic in {topic for topic, _ in self.fired}:
            tally.topic_patients[topic] += 1
        tally.patients_with_cards += bool(self.fired)


def _context(patient_id: str, selections: Sequence[str] | None, drafts: list[bytes]) -> bytes:
    context = b'{"userId":' + USER_ID + b',"patientId":' + orjson.dumps(patient_id)
    if selections is not None:
        context += b',"selections":' + orjson.dumps(list(selections))
    if selections is not None or drafts:
        context += b',"draftOrders":' + _bundle(b'"collection"', drafts, None)
    return context + b"}"


def simulate_patient(
    patient: Patient,
    version: Version,
    medications: MedicationLookup,
    cards_out: IO[bytes],
    *,
    hooks: frozenset[str],
    at: float,
    since: float,
    with_detail: bool,
) -> None:
    caller = Caller(version, patient, medications, cards_out, with_detail=with_detail)
    if "patient-view" in hooks:
        body = prefetch(patient, version, at, medications)
        result = caller.call("patient-view", at, _context(patient.id, None, []), body)
        if caller.record("patient-view", at, result):
            version.tally.views_with_cards += 1
    if "order-select" in hooks or "order-sign" in hooks:
        for moment, orders in patient.sessions(since, at):
            _replay_session(patient, version, caller, hooks, moment, orders, medications)
    caller.finish()


def _replay_session(
    patient: Patient,
    version: Version,
    caller: Caller,
    hooks: frozenset[str],
    at: float,
    orders: list[Record],
    medications: MedicationLookup,
) -> None:
    tally = version.tally
    tally.orders += len(orders)
    tally.sessions += 1
    labs = patient.lab_orders(at)
    session = [*orders, *labs]
    drafts = {id(r): b'{"resource":' + r.as_draft() + b"}" for r in session}
    exclude = frozenset(drafts)
    draft_meds = [r.medication for r in orders if r.medication]
    body = prefetch(
        patient, version, at, medications, exclude=exclude, draft_medications=draft_meds
    )
    lab_drafts = [drafts[id(r)] for r in labs]
    if "order-select" in hooks:
        for position, order in enumerate(orders):
            reference = f"MedicationRequest/{order.id}"
            basket = [drafts[id(r)] for r in orders[: position + 1]] + lab_drafts
            context = _context(patient.id, [reference], basket)
            result = caller.call("order-select", at, context, body)
            caller.record("order-select", at, result, [reference])
    if "order-sign" in hooks:
        context = _context(patient.id, None, [drafts[id(r)] for r in session])
        result = caller.call("order-sign", at, context, body)
        caller.record(
            "order-sign", at, result, [f"MedicationRequest/{order.id}" for order in orders]
        )
