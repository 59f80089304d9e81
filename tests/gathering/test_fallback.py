"""Absent keys fetched from a real local FHIR endpoint: token, paging, failures, one deadline."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
from structlog.testing import capture_logs

from cds_service.gathering import FhirFetchError, RequestsFhirClient
from cds_service.metrics import REGISTRY
from cds_service.protocol import DataUnavailable

from .support import (
    PATIENT_ID,
    TEMPLATES,
    TOKEN,
    FakeFhirServer,
    bundle,
    full_prefetch,
    hook_request,
    observation,
    outcome,
    patient,
    run,
)


def _without(key: str) -> dict[str, Any]:
    prefetch = full_prefetch()
    del prefetch[key]
    return prefetch


def _pages(fhir: FakeFhirServer, count: int, per_page: int = 2) -> None:
    """``count`` linked pages of Observations: the first answers the search itself."""
    for page in range(1, count + 1):
        path = "/fhir/Observation" if page == 1 else f"/fhir/Observation?page={page}"
        next_url = f"{fhir.base}/Observation?page={page + 1}" if page < count else None
        ids = [f"p{page}-{i}" for i in range(per_page)]
        fhir.add(path, bundle(*(observation(i) for i in ids), next_url=next_url))


def test_absent_key_is_fetched_with_the_bearer_token(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    fhir.add("/fhir/Observation", bundle(observation("o1"), observation("o2")))
    data = run(hook_request(_without("observations"), fhir_server=fhir.base, token=TOKEN), client)
    assert [r.id for r in data.resources["observations"]] == ["o1", "o2"]
    assert data.sources == {
        "patient": "prefetch",
        "observations": "fhir",
        "medicationRequests": "prefetch",
    }
    [seen] = fhir.seen
    assert seen.path == "/fhir/Observation"
    assert seen.query["patient"] == [PATIENT_ID]
    assert seen.query["code"] == ["http://loinc.org|19123-9"]
    assert seen.authorization == f"Bearer {TOKEN}"
    assert "prefetch 'observations' absent: fetched 1 page from FHIR server" in data.notes


def test_without_fhir_authorization_no_token_is_sent(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    fhir.add(f"/fhir/Patient/{PATIENT_ID}", patient())
    data = run(hook_request(_without("patient"), fhir_server=fhir.base), client)
    assert data.resources["patient"][0].id == PATIENT_ID
    assert [s.authorization for s in fhir.seen] == [None]


def test_pagination_is_followed_across_three_pages(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    _pages(fhir, 3)
    data = run(hook_request(_without("observations"), fhir_server=fhir.base, token=TOKEN), client)
    assert [r.id for r in data.resources["observations"]] == [
        "p1-0", "p1-1", "p2-0", "p2-1", "p3-0", "p3-1",
    ]  # fmt: skip
    assert [s.query.get("page") for s in fhir.seen] == [None, ["2"], ["3"]]
    assert all(s.authorization == f"Bearer {TOKEN}" for s in fhir.seen)
    assert "prefetch 'observations' absent: fetched 3 pages from FHIR server" in data.notes


def test_page_cap_is_respected(fhir: FakeFhirServer, client: RequestsFhirClient) -> None:
    _pages(fhir, 3)
    data = run(hook_request(_without("observations"), fhir_server=fhir.base), client, page_cap=2)
    assert len(fhir.seen) == 2
    assert len(data.resources["observations"]) == 4
    assert "prefetch 'observations': stopped at the page cap of 2 pages" in data.notes


def test_fetched_entries_are_capped(fhir: FakeFhirServer, client: RequestsFhirClient) -> None:
    _pages(fhir, 3)
    data = run(hook_request(_without("observations"), fhir_server=fhir.base), client, max_entries=3)
    assert [r.id for r in data.resources["observations"]] == ["p1-0", "p1-1", "p2-0"]
    assert len(fhir.seen) == 2
    assert "prefetch 'observations' capped at 3 resources" in data.notes


def test_next_link_on_another_origin_is_not_followed(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    # Same socket, other origin: the token must still not go there.
    elsewhere = fhir.base.replace("127.0.0.1", "localhost") + "/Observation?page=2"
    fhir.add("/fhir/Observation", bundle(observation("o1"), next_url=elsewhere))
    data = run(hook_request(_without("observations"), fhir_server=fhir.base, token=TOKEN), client)
    assert len(fhir.seen) == 1
    assert [r.id for r in data.resources["observations"]] == ["o1"]
    assert (
        "prefetch 'observations': next page is not on the FHIR server, not followed" in data.notes
    )


def test_relative_next_link_is_resolved_on_the_server(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    fhir.add("/fhir/Observation", bundle(observation("o1"), next_url="Observation?page=2"))
    fhir.add("/fhir/Observation?page=2", bundle(observation("o2")))
    data = run(hook_request(_without("observations"), fhir_server=fhir.base), client)
    assert [r.id for r in data.resources["observations"]] == ["o1", "o2"]


@pytest.mark.parametrize(
    ("status", "body", "raw"),
    [
        (500, outcome("exception"), False),
        (400, outcome("invalid"), False),
        (200, outcome("too-costly"), False),
        (200, b"<html>login</html>", True),
        (200, "a string", False),
    ],
)
def test_server_failure_is_unavailable(
    status: int, body: Any, raw: bool, fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    fhir.add("/fhir/Observation", body, status=status, raw=raw)
    with pytest.raises(DataUnavailable) as raised:
        run(hook_request(_without("observations"), fhir_server=fhir.base), client)
    assert raised.value.missing == ["observations"]
    assert "FHIR server failed" in str(raised.value)


def test_a_search_answered_404_is_a_type_the_server_does_not_support(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    """Observations are needed: a server without them is a 412 that says so."""
    fhir.add("/fhir/Observation", outcome("not-found"), status=404)
    with pytest.raises(DataUnavailable) as raised:
        run(hook_request(_without("observations"), fhir_server=fhir.base), client)
    assert raised.value.missing == ["observations"]
    assert str(raised.value) == "FHIR server does not support the resource type: observations"


def test_failure_on_a_later_page_is_unavailable(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    _pages(fhir, 3)
    fhir.add("/fhir/Observation?page=3", outcome("exception"), status=503)
    with pytest.raises(DataUnavailable, match="FHIR server failed"):
        run(hook_request(_without("observations"), fhir_server=fhir.base), client)


def test_server_slower_than_the_deadline_is_unavailable(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    fhir.add("/fhir/Observation", bundle(observation("o1")), delay_s=10)
    started = time.monotonic()
    with pytest.raises(DataUnavailable) as raised:
        run(hook_request(_without("observations"), fhir_server=fhir.base), client, timeout_s=0.3)
    assert raised.value.missing == ["observations"]
    assert "FHIR server timed out" in str(raised.value)
    assert time.monotonic() - started < 5  # about the deadline, not the server's 10 s


def test_fetches_run_concurrently_under_one_deadline(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    fhir.add("/fhir/Observation", bundle(observation("o1")), delay_s=0.6)
    fhir.add("/fhir/MedicationRequest", bundle(), delay_s=0.6)
    request = hook_request({"patient": patient()}, fhir_server=fhir.base, token=TOKEN)
    data = run(request, client, timeout_s=1.0)
    assert data.sources["observations"] == data.sources["medicationRequests"] == "fhir"
    assert sorted(fhir.paths()) == ["/fhir/MedicationRequest", "/fhir/Observation"]


def test_unrenderable_template_is_unavailable(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    templates = {"encounter": "Encounter/{{context.encounterId}}"}
    with pytest.raises(DataUnavailable) as raised:
        run(hook_request({}, fhir_server=fhir.base), client, templates=templates)
    assert raised.value.missing == ["encounter"]
    assert fhir.seen == []


def test_outcome_in_prefetch_fails_fast_without_fetching(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    request = hook_request({"patient": patient(), "observations": outcome()}, fhir_server=fhir.base)
    with pytest.raises(DataUnavailable) as raised:
        run(request, client)
    assert raised.value.missing == ["observations"]
    assert fhir.seen == []


class _ExplodingClient:
    def get_json(
        self, url: str, *, bearer: str | None, timeout_s: float, policy: Any = None
    ) -> Any:
        raise RuntimeError("a bug in an injected client")


class _RefusingClient:
    def get_json(
        self, url: str, *, bearer: str | None, timeout_s: float, policy: Any = None
    ) -> Any:
        raise FhirFetchError("refused")


@pytest.mark.parametrize("fhir_client", [_ExplodingClient(), _RefusingClient()])
def test_client_errors_become_unavailable(fhir_client: Any) -> None:
    request = hook_request(_without("observations"), fhir_server="https://fhir.example.org/r4")
    with pytest.raises(DataUnavailable, match="FHIR server failed"):
        run(request, fhir_client)


class _FailingTogether:
    """Fails all three key fetches at the same moment, so they finish in no particular order."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(3)

    def get_json(
        self, url: str, *, bearer: str | None, timeout_s: float, policy: Any = None
    ) -> Any:
        self.barrier.wait(timeout=5)
        raise FhirFetchError("refused")


def test_unavailable_keys_are_listed_in_template_order() -> None:
    request = hook_request(None, fhir_server="https://fhir.example.org/r4")
    for _ in range(20):
        with pytest.raises(DataUnavailable) as raised:
            run(request, _FailingTogether())
        missing = raised.value.missing
        assert missing and missing == [key for key in TEMPLATES if key in missing]


def test_unreachable_server_is_unavailable(client: RequestsFhirClient) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    request = hook_request(_without("observations"), fhir_server=f"http://127.0.0.1:{port}")
    with pytest.raises(DataUnavailable) as raised:
        run(request, client)
    assert raised.value.missing == ["observations"]


def test_fallback_metrics_count_outcomes(fhir: FakeFhirServer, client: RequestsFhirClient) -> None:
    def count(result: str) -> float:
        return REGISTRY.get_sample_value("cds_fhir_fallback_total", {"outcome": result}) or 0.0

    before = (count("ok"), count("failed"))
    fhir.add("/fhir/Observation", bundle(observation("o1")))
    fhir.add("/fhir/MedicationRequest", outcome(), status=500)
    run(hook_request(_without("observations"), fhir_server=fhir.base), client)
    with pytest.raises(DataUnavailable):
        run(hook_request(_without("medicationRequests"), fhir_server=fhir.base), client)
    assert (count("ok") - before[0], count("failed") - before[1]) == (1.0, 1.0)


def test_logs_and_notes_carry_no_token_or_patient_id(
    fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    fhir.add("/fhir/Observation", bundle(observation("o1")))
    fhir.add("/fhir/MedicationRequest", outcome(), status=500)
    with capture_logs() as logs:
        data = run(
            hook_request(_without("observations"), fhir_server=fhir.base, token=TOKEN), client
        )
        with pytest.raises(DataUnavailable) as raised:
            run(
                hook_request(_without("medicationRequests"), fhir_server=fhir.base, token=TOKEN),
                client,
            )
    assert [entry["event"] for entry in logs] == [
        "gathering.fhir_fallback",
        "gathering.unavailable",
    ]
    text = repr(logs) + repr(data.notes) + str(raised.value)
    assert TOKEN not in text
    assert PATIENT_ID not in text
