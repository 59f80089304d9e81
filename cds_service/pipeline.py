"""One hook call end to end: request → data → facts → rules → cards → audit; and feedback."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from . import metrics
from ._logging import get_logger, patient_hash
from .alerting import Suppressor
from .blocking import WouldBlock
from .content import Content
from .engine import Engine, Evaluation
from .feedback import parse_feedback
from .gathering import FetchPolicy, FhirClient, GatheredData, ServerMemory, gather, policy_for
from .options import (
    DEFAULT_CONFIGURATION,
    Configuration,
    client_configuration,
    configured,
    removed_by_configuration,
)
from .profile import Profile, ProfileSet, build_profile
from .protocol import SERVICES, HookRequest, Issue, ServiceError, parse_hook_request
from .render import render_card, topic_of
from .rules import Finding
from .settings import Settings
from .store import ShownCard, Store, card_records
from .versions import CDS_HOOKS_2_0, response_for

if TYPE_CHECKING:  # JWT verification (and cryptography) is imported only when auth is on
    from .trust import VerifiedCaller

Clock = Callable[[], datetime]
_log = get_logger(__name__)
# Why a finding of a topic in silent mode is withheld from the response (it is still audited).
SILENT = "silent mode"


def utc_now() -> datetime:
    return datetime.now(UTC)


def order_key(finding: Finding) -> str | None:
    """Identifies the orders a card is about, so order-sign can recognise an order-select card."""
    if not finding.order_ids:
        return None
    joined = "\n".join(sorted(finding.order_ids))
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


def _would_block(finding: Finding) -> str | None:
    raise WouldBlock


def fetch_policy(caller: VerifiedCaller | None) -> FetchPolicy:
    """Where a call may fetch: anywhere with auth off; else the client's fhir_servers, or
    public addresses only."""
    if caller is None:
        return policy_for(authenticated=False, fhir_servers=None)
    return policy_for(authenticated=True, fhir_servers=caller.fhir_servers)


class UnknownService(ServiceError):
    def __init__(self, service_id: str) -> None:
        super().__init__(404, [Issue(f"no CDS service '{service_id}'", "not-found")])


@dataclass(frozen=True, slots=True)
class HookResult:
    request: HookRequest
    evaluation: Evaluation
    patient_hash: str
    silent: tuple[ShownCard, ...] = ()
    """Cards of topics in silent mode: evaluated and audited, never in the response."""
    profile: str = "default"
    """The name of the profile the call was served with."""
    cds_hooks_version: str = CDS_HOOKS_2_0
    """The version the response is shaped for; the evaluation's cards (what the audit records)
    are always the 2.0 ones."""
    configuration: Configuration = DEFAULT_CONFIGURATION
    """What the client's configuration options asked of this call."""

    @property
    def response(self) -> dict[str, Any]:
        return response_for(self.cds_hooks_version, self.evaluation.cards)


class CdsService:
    """The service behind the HTTP layer and the CLI; every I/O client is injected."""

    def __init__(
        self,
        *,
        settings: Settings,
        content: Content | None = None,
        store: Store | None,
        fhir_client: FhirClient,
        clock: Clock = utc_now,
        profiles: ProfileSet | None = None,
    ) -> None:
        """Serves every call with ``content``, or, given ``profiles``, each caller with its
        client's profile (exactly one of the two)."""
        if (content is None) == (profiles is None):
            raise ValueError("give the content or the profiles")
        self.settings = settings
        self.store = store
        self.fhir_client = fhir_client
        self.clock = clock
        # What each FHIR server's refusals taught the fallback (types it lacks, page size, sort).
        self.server_memory = ServerMemory()
        if profiles is None:
            assert content is not None
            profiles = ProfileSet(build_profile(content, public_base_url=settings.public_base_url))
        self.profiles = profiles
        self.profile = profiles.default
        metrics.CONTENT_INFO.clear()  # this service's profiles only, not an earlier service's
        for profile in profiles.profiles:
            metrics.set_content_info(profile.name, profile.content.governance.version.as_dict())
        self.discovery_ids = frozenset(SERVICES)

    # The default profile's parts: discovery and topic pages are served from it (they are not
    # per caller: discovery and the pages are read without a token).
    @property
    def content(self) -> Content:
        return self.profile.content

    @property
    def engine(self) -> Engine:
        return self.profile.engine

    @property
    def discovery(self) -> Any:
        return self.profile.discovery

    def profile_for(self, caller: VerifiedCaller | None) -> Profile:
        """The profile of the caller's client; the default one for a client without a profile,
        and for every call with authentication off (no caller)."""
        return self.profiles.for_iss(caller.iss if caller is not None else None)

    def gather(
        self,
        request: HookRequest,
        profile: Profile,
        *,
        caller: VerifiedCaller | None = None,
        inline: bool = False,
    ) -> GatheredData:
        s = self.settings
        return gather(
            request,
            profile.templates,
            client=self.fhir_client,
            timeout_s=s.fhir_timeout_s,
            page_cap=s.fhir_page_cap,
            max_entries=s.max_prefetch_entries,
            max_draft_orders=s.max_draft_orders,
            optional=profile.optional_keys,
            offline=inline,
            policy=fetch_policy(caller),
            host_concurrency=s.fhir_host_concurrency,
            server=profile.fhir,
            memory=self.server_memory,
        )

    def evaluate(
        self,
        request: HookRequest,
        service_id: str,
        now: datetime,
        *,
        caller: VerifiedCaller | None = None,
        inline: bool = False,
    ) -> HookResult:
        profile = self.profile_for(caller)
        # A bad option is a 400 before any data is fetched.
        configuration = client_configuration(request, profile.configuration_options)
        data = self.gather(request, profile, caller=caller, inline=inline)
        hashed = patient_hash(self.settings.patient_hash_key, request.patient_id)
        silenced: list[Finding] = []
        evaluation = profile.engine.evaluate(
            hook=request.hook,
            context=request.context,
            resources=data.resources,
            draft_orders=data.draft_orders,
            medications=data.medications,
            now=now,
            suppress=_silencing(
                configured(
                    self._suppressor(profile, service_id, hashed, now, inline=inline),
                    configuration,
                ),
                _silent_topics(profile.content),
                silenced,
            ),
            notes=data.notes,
        )
        silent = tuple(
            ShownCard(
                render_card(finding, profile.content, request.patient_id),
                finding.topic,
                finding.indicator,
                order_key(finding),
            )
            for finding in silenced
        )
        return HookResult(
            request,
            evaluation,
            hashed,
            silent,
            profile=profile.name,
            cds_hooks_version=profile.cds_hooks_version,
            configuration=configuration,
        )

    def hook(
        self,
        service_id: str,
        payload: Any,
        *,
        caller: VerifiedCaller | None = None,
        inline: bool = False,
    ) -> HookResult:
        """One hook call. ``inline``: raise ``WouldBlock`` rather than block on I/O."""
        service = SERVICES.get(service_id)
        if service is None:
            raise UnknownService(service_id)
        started = time.perf_counter()
        request = parse_hook_request(payload, expected_hook=service.hook)
        now = self.clock()
        result = self.evaluate(request, service_id, now, caller=caller, inline=inline)
        self._record(service_id, result, now, caller)
        self._count(result)
        _log.info(
            "hook.evaluated",
            service=service_id,
            hook=request.hook,
            hook_instance=request.hook_instance,
            patient=result.patient_hash,
            profile=result.profile,
            topics=[topic_of(card) for card in result.evaluation.cards],
            silent=[item.topic for item in result.silent],
            withheld=[
                topic for topic, why in result.evaluation.withheld if _snoozed_or_capped(why)
            ],
            configured=[
                topic for topic, why in result.evaluation.withheld if removed_by_configuration(why)
            ],
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return result

    def _reads_store(self, profile: Profile, service_id: str) -> bool:
        """Snooze and order-select/sign coordination read past overrides from the database."""
        return self.store is not None and profile.snooze.reads_overrides(service_id)

    def _suppressor(
        self, profile: Profile, service_id: str, hashed: str, now: datetime, *, inline: bool
    ) -> Suppressor | None:
        """Reads this patient's overrides once a card is about to be shown. On the event loop
        (``inline``) that read would block: the call is retried in a worker thread, which costs
        only calls that have a card to show (most have none)."""
        if self.store is None or not self._reads_store(profile, service_id):
            return None
        if inline:
            return _would_block
        return profile.snooze.suppressor(
            self.store,
            topics=set(profile.content.topics),
            service_id=service_id,
            patient_hash=hashed,
            now=now,
            order_key=order_key,
        )

    @staticmethod
    def _count(result: HookResult) -> None:
        for card in result.evaluation.cards:
            metrics.CARDS.labels(topic_of(card), card["indicator"]).inc()
        for topic, reason in result.evaluation.withheld:
            if _snoozed_or_capped(reason):
                metrics.CARDS_SNOOZED.labels(topic).inc()

    def _record(
        self,
        service_id: str,
        result: HookResult,
        now: datetime,
        caller: VerifiedCaller | None = None,
    ) -> None:
        evaluation = result.evaluation
        if self.store is None or not (evaluation.cards or result.silent):
            return
        version = self.profile_for(caller).content.governance.version
        user_id = result.request.context.get("userId")
        # The same keyed hash as the patient's: the audit never holds a user id in clear.
        user_hash = patient_hash(self.settings.patient_hash_key, str(user_id)) if user_id else None
        shown = [
            ShownCard(card, finding.topic, finding.indicator, order_key(finding))
            for card, finding in zip(evaluation.cards, evaluation.shown, strict=True)
        ]
        records = [
            card_records(
                cards,
                service_id=service_id,
                hook=result.request.hook,
                hook_instance=result.request.hook_instance,
                patient_hash=result.patient_hash,
                now=now,
                content_version=version.version,
                content_fingerprint=version.fingerprint,
                user_hash=user_hash,
                iss=caller.iss if caller else None,
                tenant=caller.tenant if caller else None,
                silent=silent,
            )
            for cards, silent in ((shown, False), (result.silent, True))
        ]
        self.store.record_cards(records[0] + records[1])

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


def _snoozed_or_capped(reason: str) -> bool:
    """Withheld by snooze, order-select coordination or the card cap: not by silent mode, nor
    by the client's configuration (which the client asked for)."""
    return reason != SILENT and not removed_by_configuration(reason)


def _silent_topics(content: Content) -> frozenset[str]:
    return frozenset(
        code for code, compiled in content.topics.items() if compiled.topic.mode == "silent"
    )


def _silencing(
    suppress: Suppressor | None, silent: frozenset[str], silenced: list[Finding]
) -> Suppressor | None:
    """Withholds the findings of topics in silent mode (collected for the audit), before any
    other suppression: a silent finding takes no place under the card cap."""
    if not silent:
        return suppress

    def check(finding: Finding) -> str | None:
        if finding.topic in silent:
            silenced.append(finding)
            return SILENT
        return suppress(finding) if suppress is not None else None

    return check
