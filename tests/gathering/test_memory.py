"""What the service learns per FHIR server: kept for a while, per server, thread-safe."""

from __future__ import annotations

import threading

import pytest

from cds_service.gathering import Learnt, ServerMemory, server_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_key_is_the_origin_and_base_path() -> None:
    assert server_key("https://EHR.example.org/fhir/r4/") == "https://ehr.example.org:443/fhir/r4"
    assert server_key("http://127.0.0.1:8081/fhir") == "http://127.0.0.1:8081/fhir"
    assert server_key("https://ehr.example.org:443/fhir/r4") == server_key(
        "https://ehr.example.org/fhir/r4"
    )


def test_what_is_learnt_is_recalled_until_the_ttl_passes() -> None:
    clock = Clock()
    memory = ServerMemory(ttl_s=3600, clock=clock)
    server = "https://ehr.example.org/fhir/r4"
    assert memory.recall(server) == Learnt()
    memory.learn_unsupported(server, "MedicationStatement")
    memory.learn_page_size(server, "Observation", 200)
    clock.now += 1800
    memory.learn_unsorted(server, "Observation")
    learnt = memory.recall(server + "/")
    assert learnt.unsupported == {"MedicationStatement"}
    assert dict(learnt.page_sizes) == {"Observation": 200}
    assert learnt.unsorted == {"Observation"}
    clock.now += 1800  # the first two are an hour old: forgotten; the sort is not
    learnt = memory.recall(server)
    assert (learnt.unsupported, dict(learnt.page_sizes)) == (frozenset(), {})
    assert learnt.unsorted == {"Observation"}
    clock.now += 1800
    assert memory.recall(server) == Learnt()


def test_servers_are_kept_apart() -> None:
    memory = ServerMemory()
    memory.learn_unsupported("https://a.example.org/fhir", "MedicationStatement")
    assert memory.recall("https://a.example.org/fhir").unsupported == {"MedicationStatement"}
    assert memory.recall("https://a.example.org/fhir/other") == Learnt()
    assert memory.recall("https://b.example.org/fhir") == Learnt()
    assert memory.recall("http://a.example.org/fhir") == Learnt()


def test_a_smaller_page_size_wins_until_it_expires() -> None:
    clock = Clock()
    memory = ServerMemory(ttl_s=60, clock=clock)
    memory.learn_page_size("https://a.example.org", "Observation", 100)
    memory.learn_page_size("https://a.example.org", "Observation", 200)
    assert memory.recall("https://a.example.org").page_sizes == {"Observation": 100}
    clock.now += 61
    memory.learn_page_size("https://a.example.org", "Observation", 200)
    assert memory.recall("https://a.example.org").page_sizes == {"Observation": 200}


def test_the_least_recently_used_server_goes_first() -> None:
    memory = ServerMemory(max_servers=2)
    for name in ("a", "b"):
        memory.learn_unsupported(f"https://{name}.example.org", "Condition")
    memory.recall("https://a.example.org")  # a is used: b is the oldest
    memory.learn_unsupported("https://c.example.org", "Condition")
    assert memory.recall("https://a.example.org").unsupported == {"Condition"}
    assert memory.recall("https://b.example.org") == Learnt()
    assert memory.recall("https://c.example.org").unsupported == {"Condition"}


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        ServerMemory(ttl_s=0)
    with pytest.raises(ValueError):
        ServerMemory(max_servers=0)


def test_concurrent_learning_and_recall_is_safe() -> None:
    memory = ServerMemory(max_servers=8)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(500):
                server = f"https://s{(worker + i) % 12}.example.org/fhir"
                memory.learn_page_size(server, "Observation", 100 + i % 7)
                memory.learn_unsupported(server, "MedicationStatement")
                memory.recall(server)
        except BaseException as exc:  # pragma: no cover - the failure this test looks for
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    known = [memory.recall(f"https://s{n}.example.org/fhir") for n in range(12)]
    assert sum(1 for learnt in known if learnt.unsupported) == 8
