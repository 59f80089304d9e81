"""The fallback fits the FHIR server: page size, sort and resource types, learnt or configured.

Against a real local FHIR endpoint that refuses what strict servers refuse: a ``_count`` over
its maximum, ``_sort``, a resource type it does not have.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from structlog.testing import capture_logs

from cds_service.blocking import WouldBlock
from cds_service.gathering import FhirServerOptions, RequestsFhirClient, ServerMemory
from cds_service.metrics import REGISTRY
from cds_service.protocol import DataUnavailable

from .support import (
    PATIENT_ID,
    FakeFhirServer,
    bundle,
    hook_request,
    med_request,
    medication,
    observation,
    outcome,
    patient,
    run,
)

TEMPLATES = {
    "patient": "Patient/{{context.patientId}}",
    "observations": (
        "Observation?patient={{context.patientId}}&code=http://loinc.org|19123-9"
        "&_sort=-date&_count=1000"
    ),
    "medicationRequests": "MedicationRequest?patient={{context.patientId}}&status=active",
    "medicationStatements": "MedicationStatement?patient={{context.patientId}}&status=active",
    "conditions": "Condition?patient={{context.patientId}}",
}
OPTIONAL = frozenset({"conditions"})
COUNT_REFUSED = outcome("invalid", diagnostics="_count must be between 1 and 200.")
SORT_REFUSED = outcome("not-supported", diagnostics="The _sort parameter is not supported.")
# Oldest first: a server that does not sort answers in its own order.
OBSERVATIONS = [
    observation("old", 0.9, "2026-01-05T08:00:00Z"),
    observation("newest", 0.5, "2026-11-19T08:00:00Z"),
    observation("middle", 0.7, "2026-06-01"),
]


class StrictServer:
    """What the endpoint answers: the strict server's limits, each switchable."""

    def __init__(self, fhir: FakeFhirServer) -> None:
        self.fhir = fhir
        self.max_count: int | None = 200
        self.sortable = False
        self.types = {"Patient", "Observation", "MedicationRequest", "Condition", "Medication"}
        self.medication_requests: list[dict[str, Any]] = [med_request("r1")]
        self.statements: tuple[int, Any] | None = None
        """Overrides what a MedicationStatement search answers."""
        self.medication: tuple[int, Any] = (200, medication("m1"))
        fhir.respond = self.respond

    def respond(self, path: str, query: Mapping[str, list[str]]) -> tuple[int, Any] | None:
        kind = path.removeprefix("/fhir/").split("/")[0]
        if kind == "MedicationStatement" and self.statements is not None:
            return self.statements
        if kind not in self.types:
            return 404, outcome("not-supported", diagnostics=f"{kind} is not supported")
        count = query.get("_count", [None])[0]
        if count is not None and self.max_count is not None and int(count) > self.max_count:
            return 400, COUNT_REFUSED
        if "_sort" in query and not self.sortable:
            return 400, SORT_REFUSED
        if kind == "Patient":
            return 200, patient()
        if kind == "Medication":
            return self.medication
        if kind == "Observation":
            return 200, bundle(*OBSERVATIONS)
        if kind == "MedicationRequest":
            return 200, bundle(*self.medication_requests)
        return 200, bundle()

    def requests(self) -> list[str]:
        """Each request as ``Type?name=value&...`` (sorted parameters, patient left out)."""
        seen = []
        for request in self.fhir.seen:
            params = sorted(
                f"{name}={value}"
                for name, values in request.query.items()
                for value in values
                if name not in ("patient", "code", "status")
            )
            target = request.path.removeprefix("/fhir/")
            seen.append(target + ("?" + "&".join(params) if params else ""))
        return sorted(seen)


@pytest.fixture
def strict(fhir: FakeFhirServer) -> Iterator[StrictServer]:
    yield StrictServer(fhir)


def _gather(
    strict: StrictServer, client: RequestsFhirClient, memory: ServerMemory | None, **kw: Any
) -> Any:
    request = hook_request(kw.pop("prefetch", None), fhir_server=strict.fhir.base)
    return run(request, client, templates=TEMPLATES, optional=OPTIONAL, memory=memory, **kw)


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _adaptations(kind: str, resource: str) -> float:
    return _metric("cds_fhir_adaptations_total", kind=kind, resource=resource)


def _unsupported(resource: str, known_from: str) -> float:
    return _metric("cds_fhir_unsupported_total", resource=resource, known_from=known_from)


# --- page size and sort ---------------------------------------------------------------------------


def test_a_refused_count_and_sort_are_asked_again_once_then_remembered(
    strict: StrictServer, client: RequestsFhirClient
) -> None:
    memory = ServerMemory()
    before = (_adaptations("page_size", "Observation"), _adaptations("sort", "Observation"))
    data = _gather(strict, client, memory)
    observations = [r.id for r in data.resources["observations"]]
    assert observations == ["newest", "middle", "old"]  # sorted here, newest first
    assert [r for r in strict.requests() if r.startswith("Observation")] == [
        "Observation?_count=1000&_sort=-date",
        "Observation?_count=200",
        "Observation?_count=200&_sort=-date",
    ]
    assert [n for n in data.notes if n.startswith("prefetch 'observations'")] == [
        "prefetch 'observations' absent: fetched 1 page from FHIR server",
        "prefetch 'observations': the FHIR server refused _count=1000; asked again with _count=200",
        "prefetch 'observations': the FHIR server does not support _sort; asked again without "
        "it, sorted here",
    ]
    after = (_adaptations("page_size", "Observation"), _adaptations("sort", "Observation"))
    assert [b - a for a, b in zip(before, after, strict=True)] == [1.0, 1.0]
    learnt = memory.recall(strict.fhir.base)
    assert (dict(learnt.page_sizes), learnt.unsorted) == ({"Observation": 200}, {"Observation"})

    strict.fhir.seen.clear()
    again = _gather(strict, client, memory)
    assert [r.id for r in again.resources["observations"]] == ["newest", "middle", "old"]
    assert [r for r in strict.requests() if r.startswith("Observation")] == [
        "Observation?_count=200"
    ]
    assert [n for n in again.notes if n.startswith("prefetch 'observations'")] == [
        "prefetch 'observations': _sort not sent (the FHIR server does not support it), "
        "sorted here",
        "prefetch 'observations' absent: fetched 1 page from FHIR server",
    ]
    after_again = (_adaptations("page_size", "Observation"), _adaptations("sort", "Observation"))
    assert after_again == after


def test_without_memory_each_call_adapts_on_its_own(
    strict: StrictServer, client: RequestsFhirClient
) -> None:
    for _ in range(2):
        _gather(strict, client, None)
    observation_requests = [r for r in strict.requests() if r.startswith("Observation")]
    assert len(observation_requests) == 6


def test_a_count_refused_again_is_a_412(strict: StrictServer, client: RequestsFhirClient) -> None:
    strict.max_count = 10  # the server's text says 200, but it takes 10 at most
    strict.sortable = True
    with pytest.raises(DataUnavailable) as raised:
        _gather(strict, client, ServerMemory())
    assert raised.value.missing == ["observations"]
    assert str(raised.value) == "FHIR server failed: observations"
    assert [r for r in strict.requests() if r.startswith("Observation")] == [
        "Observation?_count=1000&_sort=-date",
        "Observation?_count=200&_sort=-date",
    ]


def test_the_deadline_covers_the_retries(
    strict: StrictServer, fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    strict.max_count = None
    strict.sortable = True
    respond = strict.respond

    def slow_retry(path: str, query: Mapping[str, list[str]]) -> tuple[int, Any] | None:
        if path.endswith("/Observation") and query.get("_count") == ["1000"]:
            return 400, COUNT_REFUSED
        if path.endswith("/Observation"):
            return None  # the route below: answered after the deadline
        return respond(path, query)

    fhir.respond = slow_retry
    fhir.add("/fhir/Observation", bundle(), delay_s=5)
    with pytest.raises(DataUnavailable) as raised:
        _gather(strict, client, ServerMemory(), timeout_s=0.5)
    assert str(raised.value) == "FHIR server timed out: observations"


# --- resource types the server does not have ------------------------------------------------------


def test_statements_the_server_lacks_are_no_data_and_remembered(
    strict: StrictServer, client: RequestsFhirClient
) -> None:
    memory = ServerMemory()
    before = (
        _unsupported("MedicationStatement", "server"),
        _unsupported("MedicationStatement", "memory"),
        _adaptations("unsupported_type", "MedicationStatement"),
        _metric("cds_fhir_fallback_total", outcome="unsupported"),
    )
    data = _gather(strict, client, memory)
    assert data.resources["medicationStatements"] == []
    assert data.sources["medicationStatements"] == "unsupported"
    assert (
        "prefetch 'medicationStatements' absent: the FHIR server does not support "
        "MedicationStatement; taken as no data"
    ) in data.notes
    assert memory.recall(strict.fhir.base).unsupported == {"MedicationStatement"}

    strict.fhir.seen.clear()
    again = _gather(strict, client, memory)
    assert not [r for r in strict.requests() if r.startswith("MedicationStatement")]
    assert again.sources["medicationStatements"] == "unsupported"
    assert (
        "prefetch 'medicationStatements' absent: the FHIR server does not support "
        "MedicationStatement (learnt from an earlier call); taken as no data"
    ) in again.notes
    after = (
        _unsupported("MedicationStatement", "server"),
        _unsupported("MedicationStatement", "memory"),
        _adaptations("unsupported_type", "MedicationStatement"),
        _metric("cds_fhir_fallback_total", outcome="unsupported"),
    )
    assert [b - a for a, b in zip(before, after, strict=True)] == [1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ((500, outcome("exception")), "FHIR server failed"),
        (
            (400, outcome("not-supported", diagnostics="status is not supported")),
            "FHIR server failed",
        ),
        ((403, outcome("forbidden")), "FHIR server failed"),
    ],
    ids=["500", "a-parameter-not-the-type", "403"],
)
def test_statements_failing_otherwise_are_a_412(
    strict: StrictServer, client: RequestsFhirClient, answer: tuple[int, Any], reason: str
) -> None:
    """A statement may be the only record of a CNI or a magnesium supplement: losing it silently
    could change a card, so only a server that does not have the type makes it "no data"."""
    strict.statements = answer
    memory = ServerMemory()
    with pytest.raises(DataUnavailable) as raised:
        _gather(strict, client, memory)
    assert raised.value.missing == ["medicationStatements"]
    assert str(raised.value) == f"{reason}: medicationStatements"
    assert memory.recall(strict.fhir.base).unsupported == frozenset()


def test_statements_that_time_out_are_a_412(
    strict: StrictServer, fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    strict.types.add("MedicationStatement")
    fhir.respond = lambda path, query: (
        None if "MedicationStatement" in path else strict.respond(path, query)
    )
    fhir.add("/fhir/MedicationStatement", bundle(), delay_s=5)
    with pytest.raises(DataUnavailable) as raised:
        _gather(strict, client, ServerMemory(), timeout_s=0.5)
    assert str(raised.value) == "FHIR server timed out: medicationStatements"


def test_conditions_the_server_lacks_are_no_data_and_failing_are_unknown(
    strict: StrictServer, fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    strict.types.discard("Condition")
    data = _gather(strict, client, ServerMemory())
    assert data.sources["conditions"] == "unsupported"
    strict.types.add("Condition")
    fhir.respond = lambda path, query: (
        (500, outcome("exception")) if "Condition" in path else strict.respond(path, query)
    )
    data = _gather(strict, client, ServerMemory())
    assert data.sources["conditions"] == "unavailable"
    assert (
        "prefetch 'conditions' unavailable (FHIR server failed): treated as unknown" in data.notes
    )


def test_observations_the_server_lacks_are_a_412_that_says_so(
    strict: StrictServer, client: RequestsFhirClient
) -> None:
    strict.types.discard("Observation")
    memory = ServerMemory()
    with pytest.raises(DataUnavailable) as raised:
        _gather(strict, client, memory)
    assert raised.value.missing == ["observations"]
    assert str(raised.value) == "FHIR server does not support the resource type: observations"
    # A type the rules need is never remembered as missing: the next call asks again.
    assert "Observation" not in memory.recall(strict.fhir.base).unsupported


def test_a_patient_not_found_is_a_412_not_an_unsupported_type(
    strict: StrictServer, fhir: FakeFhirServer, client: RequestsFhirClient
) -> None:
    fhir.respond = lambda path, query: (
        (404, outcome("not-found")) if "/Patient/" in path else strict.respond(path, query)
    )
    with pytest.raises(DataUnavailable) as raised:
        _gather(strict, client, ServerMemory())
    assert str(raised.value) == "FHIR server failed: patient"


# --- referenced Medications -----------------------------------------------------------------------


def test_medications_the_server_lacks_are_noted_counted_and_not_read_again(
    strict: StrictServer, client: RequestsFhirClient
) -> None:
    strict.medication_requests = [
        med_request("r1", "Medication/m1"),
        med_request("r2", "Medication/m2"),
    ]
    strict.medication = (400, outcome("not-supported", diagnostics="not supported"))
    memory = ServerMemory()
    before = (
        _adaptations("unsupported_type", "Medication"),
        _unsupported("Medication", "server"),
        _unsupported("Medication", "memory"),
    )
    data = _gather(strict, client, memory)
    assert data.medications == {}
    assert [n for n in data.notes if n.startswith("Medication/")] == [
        "Medication/m1 could not be resolved: the FHIR server does not support Medication",
        "Medication/m2 could not be resolved: the FHIR server does not support Medication",
    ]
    strict.fhir.seen.clear()
    again = _gather(strict, client, memory)
    assert not [r for r in strict.requests() if r.startswith("Medication/")]
    assert [n for n in again.notes if n.startswith("Medication/")] == [
        "Medication/m1 could not be resolved: the FHIR server does not support Medication "
        "(learnt from an earlier call)",
        "Medication/m2 could not be resolved: the FHIR server does not support Medication "
        "(learnt from an earlier call)",
    ]
    after = (
        _adaptations("unsupported_type", "Medication"),
        _unsupported("Medication", "server"),
        _unsupported("Medication", "memory"),
    )
    assert [b - a for a, b in zip(before, after, strict=True)] == [1.0, 2.0, 2.0]


def test_a_medication_not_found_is_noted_and_read_again_next_time(
    strict: StrictServer, client: RequestsFhirClient
) -> None:
    strict.medication_requests = [med_request("r1", "Medication/m1")]
    strict.medication = (404, outcome("not-found", diagnostics="Medication/m1 not found"))
    memory = ServerMemory()
    data = _gather(strict, client, memory)
    assert "Medication/m1 could not be resolved: HTTP 404" in data.notes
    _gather(strict, client, memory)
    assert [r for r in strict.requests() if r.startswith("Medication/")] == [
        "Medication/m1",
        "Medication/m1",
    ]


# --- what the client's profile says ---------------------------------------------------------------


def test_the_profiles_page_size_replaces_count_and_is_added_to_searches(
    strict: StrictServer, client: RequestsFhirClient
) -> None:
    strict.sortable = True
    _gather(strict, client, ServerMemory(), server=FhirServerOptions(page_size=50))
    assert strict.requests() == [
        "Condition?_count=50",
        "MedicationRequest?_count=50",
        "MedicationStatement?_count=50",
        "Observation?_count=50&_sort=-date",
        f"Patient/{PATIENT_ID}",
    ]


def test_a_learnt_page_size_is_kept_below_the_profiles(
    strict: StrictServer, client: RequestsFhirClient
) -> None:
    strict.sortable = True
    memory = ServerMemory()
    memory.learn_page_size(strict.fhir.base, "Observation", 100)
    _gather(strict, client, memory, server=FhirServerOptions(page_size=150))
    assert "Observation?_count=100&_sort=-date" in strict.requests()


def test_a_profile_without_sort_sends_none_and_sorts_here(
    strict: StrictServer, client: RequestsFhirClient
) -> None:
    data = _gather(strict, client, ServerMemory(), server=FhirServerOptions(sort=False))
    assert "Observation?_count=200" in strict.requests()  # no refusal of _sort: not sent
    assert [r.id for r in data.resources["observations"]] == ["newest", "middle", "old"]
    assert "prefetch 'observations': _sort not sent (the client's profile), sorted here" in (
        data.notes
    )


def test_skipped_resources_are_not_asked_for(
    strict: StrictServer, client: RequestsFhirClient
) -> None:
    before = _unsupported("MedicationStatement", "profile")
    options = FhirServerOptions(skip_resources=frozenset({"MedicationStatement"}))
    data = _gather(strict, client, ServerMemory(), server=options)
    assert not [r for r in strict.requests() if r.startswith("MedicationStatement")]
    assert data.sources["medicationStatements"] == "unsupported"
    assert (
        "prefetch 'medicationStatements' absent: the client's profile says its FHIR server has "
        "no MedicationStatement; taken as no data"
    ) in data.notes
    assert _unsupported("MedicationStatement", "profile") == before + 1


def test_a_skip_of_a_type_the_rules_need_is_ignored_with_a_warning(
    strict: StrictServer, client: RequestsFhirClient
) -> None:
    options = FhirServerOptions(skip_resources=frozenset({"Observation", "MedicationStatement"}))
    with capture_logs() as logs:
        data = _gather(strict, client, ServerMemory(), server=options)
    assert data.sources["observations"] == "fhir"
    assert {"event": "gathering.skip_ignored", "key": "observations", "type": "Observation"} in [
        {k: v for k, v in log.items() if k in ("event", "key", "type")} for log in logs
    ]


def test_nothing_to_fetch_once_the_missing_types_are_known_stays_on_the_event_loop(
    strict: StrictServer, client: RequestsFhirClient
) -> None:
    prefetch = {
        "patient": patient(),
        "observations": bundle(observation("o1")),
        "medicationRequests": bundle(med_request("r1", "Medication/m1")),
        "conditions": bundle(),
    }
    options = FhirServerOptions(skip_resources=frozenset({"MedicationStatement", "Medication"}))
    data = _gather(strict, client, None, prefetch=prefetch, server=options, offline=True)
    assert data.sources["medicationStatements"] == "unsupported"
    assert (
        "Medication/m1 could not be resolved: the client's profile says its FHIR server has no "
        "Medication"
    ) in data.notes
    assert strict.fhir.seen == []
    with pytest.raises(WouldBlock):  # without the profile, the call needs the server
        _gather(strict, client, None, prefetch=prefetch, offline=True)


def test_a_call_moved_off_the_event_loop_counts_once(
    strict: StrictServer, client: RequestsFhirClient
) -> None:
    prefetch = {"patient": patient(), "observations": bundle(observation("o1"))}
    keys = ("patient", "observations", "medicationRequests")

    def counts() -> list[float]:
        return [
            _metric("cds_prefetch_total", key=k, outcome=o)
            for k, o in zip(keys, ("hit", "hit", "miss"), strict=True)
        ]

    before = counts()
    with pytest.raises(WouldBlock):
        _gather(strict, client, None, prefetch=prefetch, offline=True)
    assert counts() == before
    _gather(strict, client, None, prefetch=prefetch)
    assert [b - a for a, b in zip(before, counts(), strict=True)] == [1.0, 1.0, 1.0]


def test_what_a_refusal_says_never_reaches_the_logs_or_the_notes(
    strict: StrictServer, client: RequestsFhirClient
) -> None:
    """A server may echo the query, the patient id with it, in its OperationOutcome."""
    echo = f"MedicationStatement?patient={PATIENT_ID}&status=active: status is not supported"
    strict.statements = (400, outcome("not-supported", diagnostics=echo))
    strict.max_count = 200
    with capture_logs() as logs, pytest.raises(DataUnavailable) as raised:
        _gather(strict, client, ServerMemory())
    assert PATIENT_ID not in repr(logs)
    assert PATIENT_ID not in str(raised.value)
    strict.statements = None
    respond = strict.respond

    def echoing(path: str, query: Mapping[str, list[str]]) -> tuple[int, Any] | None:
        status, body = respond(path, query) or (404, None)
        if status != 200:  # every refusal names the patient
            body = outcome(body["issue"][0]["code"], diagnostics=f"{body} for {PATIENT_ID}")
        return status, body

    strict.fhir.respond = echoing
    with capture_logs() as logs:
        data = _gather(strict, client, ServerMemory())
    adapted = [n for n in data.notes if "refused" in n or "does not support" in n]
    assert len(adapted) == 3  # _count, _sort, MedicationStatement: each refusal was read
    assert PATIENT_ID not in repr(logs) + repr(data.notes)
