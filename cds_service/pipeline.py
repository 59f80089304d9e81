"""One hook call end to end: request → data → facts → rules → cards → audit; and feedback."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from . import metrics
from ._logging import get_logger, patient_hash
from .alerting import is_snoozed
from .content import Content
from .engine import Engine, Evaluation, Suppressor
from .feedback import parse_feedback
from .gathering import FhirClient, GatheredData, NetworkRequired, gather
from .protocol import (
    SERVICES,
    HookRequest,
    Issue,
    ServiceError,
    discovery_document,
    parse_hook_request,
    prefetch_templates,
)
from .render import topic_of
from .rules import Finding
from .settings import Settings
from .store import CardRecord, OverrideRecord, Store

Clock = Callable[[], datetime]
_log = get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def order_key(finding: Finding) -> str | None:
    """Identifies the orders a card is about, so order-sign can recognise an order-select card."""
    if not finding.order_ids:
        return None
    joined = "\n".join(sorted(finding.order_ids))
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


class BlockingWorkRequired(Exception):
    """An ``inline`` call would block on I/O (the FHIR server or the database)."""


class UnknownService(ServiceError):
    def __init__(self, service_id: str) -> None:
        super().__init__(404, [Issue(f"no CDS service '{service_id}'", "not-found")])


@dataclass(frozen=True, slots=True)
class HookResult:
    request: HookRequest
    evaluation: Evaluation
    patient_hash: str

    @property
    def response(self) -> dict[str, Any]:
        return self.evaluation.response()


class CdsService:
    """The service behind the HTTP layer and the CLI; every I/O client is injected."""

    def __init__(
        self,
        *,
        settings: Settings,
        content: Content,
        store: Store | None,
        fhir_client: FhirClient,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.content = content
        self.store = store
        self.fhir_client = fhir_client
        self.clock = clock
        self.engine = Engine(content)
        self.templates = prefetch_templates(content)
        self.discovery = discovery_document(content)
        self.discovery_ids = frozenset(SERVICES)
        self._snooze_hours = {
            code: topic.topic.snooze_hours
            for code, topic in content.topics.items()
            if topic.topic.snooze_hours
        }

    def gather(self, request: HookRequest, *, inline: bool = False) -> GatheredData:
        s = self.settings
        try:
            return gather(
                request,
                self.templates,
                client=self.fhir_client,
                timeout_s=s.fhir_timeout_s,
                page_cap=s.fhir_page_cap,
                max_entries=s.max_prefetch_entries,
                max_draft_orders=s.max_draft_orders,
                offline=inline,
            )
        except NetworkRequired:
            raise BlockingWorkRequired from None

    def evaluate(
        self, request: HookRequest, service_id: str, now: datetime, *, inline: bool = False
    ) -> HookResult:
        if inline and self._reads_store(service_id):
            raise BlockingWorkRequired
        data = self.gather(request, inline=inline)
        hashed = patient_hash(self.settings.patient_hash_key, request.patient_id)
        evaluation = self.engine.evaluate(
            hook=request.hook,
            context=request.context,
            resources=data.resources,
            draft_orders=data.draft_orders,
            medications=data.medications,
            now=now,
            suppress=self._suppressor(service_id, hashed, now),
            notes=data.notes,
        )
        return HookResult(request, evaluation, hashed)

    def hook(self, service_id: str, payload: Any, *, inline: bool = False) -> HookResult:
        """One hook call. ``inline``: raise ``BlockingWorkRequired`` rather than block on I/O."""
        service = SERVICES.get(service_id)
        if service is None:
            raise UnknownService(service_id)
        started = time.perf_counter()
        request = parse_hook_request(payload, expected_hook=service.hook)
        now = self.clock()
        result = self.evaluate(request, service_id, now, inline=inline)
        self._record(service_id, result, now)
        for card in result.evaluation.cards:
            metrics.CARDS.labels(topic_of(card), card["indicator"]).inc()
        for topic, _reason in result.evaluation.withheld:
            metrics.CARDS_SNOOZED.labels(topic).inc()
        _log.info(
            "hook.evaluated",
            service=service_id,
            hook=request.hook,
            hook_instance=request.hook_instance,
            patient=result.patient_hash,
            topics=[topic_of(card) for card in result.evaluation.cards],
            withheld=[topic for topic, _ in result.evaluation.withheld],
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return result

    def _reads_store(self, service_id: str) -> bool:
        """Snooze and order-select/sign coordination read past overrides from the database."""
        return self.store is not None and (
            bool(self._snooze_hours) or service_id == "mg-order-sign"
        )

    def _suppressor(self, service_id: str, hashed: str, now: datetime) -> Suppressor | None:
        if not self._reads_store(service_id):
            return None
        assert self.store is not None
        store = self.store
        session = timedelta(minutes=self.content.settings.windows.order_session_minutes)
        longest = max([timedelta(hours=h) for h in self._snooze_hours.values()] + [session])
        overrides: list[Sequence[OverrideRecord]] = []

        def suppress(finding: Finding) -> str | None:
            if not overrides:  # one query per request, only once a card is about to be shown
                overrides.append(self._recent_overrides(store, hashed, now - longest))
            hours = self._snooze_hours.get(finding.topic)
            snoozed = is_snoozed(
                finding.topic,
                finding.indicator,
                overrides=overrides[0],
                snooze=timedelta(hours=hours) if hours else None,
                now=now,
                service_id=service_id,
                order_key=order_key(finding),
                session_window=session,
            )
            return "overridden recently for this patient" if snoozed else None

        return suppress

    def _recent_overrides(
        self, store: Store, hashed: str, since: datetime
    ) -> Sequence[OverrideRecord]:
        try:
            return store.overrides_for(hashed, set(self.content.topics), since)
        except (SQLAlchemyError, OSError) as exc:
            # Snoozing is a courtesy, the card is not: without the overrides, withhold nothing.
            _log.warning("snooze.unavailable", error=type(exc).__name__)
            return ()

    def _record(self, service_id: str, result: HookResult, now: datetime) -> None:
        if self.store is None or not result.evaluation.cards:
            return
        records = [
            CardRecord(
                card_uuid=card["uuid"],
                suggestion_uuids=tuple(s["uuid"] for s in card.get("suggestions", ())),
                service_id=service_id,
                hook=result.request.hook,
                topic=finding.topic,
                indicator=finding.indicator,
                hook_instance=result.request.hook_instance,
                patient_hash=result.patient_hash,
                order_key=order_key(finding),
                created_at=now,
                suggestion_labels=tuple(s["label"] for s in card.get("suggestions", ())),
            )
            for card, finding in zip(result.evaluation.cards, result.evaluation.shown, strict=True)
        ]
        self.store.record_cards(records)

    def feedback(self, service_id: str, payload: Any) -> dict[str, Any]:
        if service_id not in SERVICES:
            raise UnknownService(service_id)
        items = parse_feedback(payload)
        if self.store is None:
            raise ServiceError(503)
        try:
            stored = self.store.store_feedback(service_id, items)
        except (SQLAlchemyError, OSError) as exc:
            # Not stored, so not acknowledged: the client may retry (items are idempotent).
            _log.error("feedback.unavailable", service=service_id, error=type(exc).__name__)
            raise ServiceError(503, [Issue("feedback could not be stored", "transient")]) from None
        _log.info("feedback.stored", service=service_id, items=len(items), stored=str(stored))
        return {}
