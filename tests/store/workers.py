"""Code run in child processes by test_processes (importable after a spawn)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from cds_service.store import Store

from .support import NOW, accepted, card, items, overridden

SERVICES = ("mg-patient-view", "mg-order-select")


def card_uuid(worker: int, number: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cds-test/{worker}/{number}"))


def write_concurrently(url: str, worker: int, count: int, barrier: Any, errors: Any) -> None:
    """Open (migrations race too), then cards, feedback and token ids, as a worker would."""
    try:
        barrier.wait(60)
        with Store.open(url) as store:
            service = SERVICES[worker % 2]
            for number in range(count):
                shown = card(card_uuid=card_uuid(worker, number), service_id=service)
                store.record_cards([shown])
                at = NOW + timedelta(seconds=number)
                feedback = overridden(shown.card_uuid, "not-relevant", at=at)
                if number % 2:
                    feedback = accepted(shown.card_uuid, at=at)
                store.store_feedback(service, items(feedback))
                assert store.first_use("iss", f"{worker}-{number}", 4_000_000_000)
    except BaseException as exc:
        errors.put(f"worker {worker}: {type(exc).__name__}: {exc}")
        raise
