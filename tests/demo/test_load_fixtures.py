"""``cds-service load-fixtures``: transaction Bundles of PUTs, and per-resource rejections."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cds_service.cli import main
from cds_service.demo import DemoData, load_fixtures, transaction_bundles

from .support import small_data

Reply = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


class FakeFhir:
    """A FHIR server that records the transactions it is sent and answers with ``reply``."""

    def __init__(self, reply: Reply) -> None:
        self.received: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.content_types: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                bundle = json.loads(self.rfile.read(length))
                fake.received.append(bundle)
                fake.paths.append(self.path)
                fake.content_types.append(self.headers.get("Content-Type", ""))
                status, body = reply(bundle)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeFhir:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _all_stored(bundle: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [
            {"response": {"status": "201 Created", "location": e["request"]["url"] + "/_history/1"}}
            for e in bundle["entry"]
        ],
    }


@pytest.fixture
def data() -> DemoData:
    return small_data()


def test_one_transaction_of_puts_per_demo_patient(data: DemoData) -> None:
    out, err = io.StringIO(), io.StringIO()
    with FakeFhir(_all_stored) as fhir:
        assert load_fixtures(fhir.url, data=data, out=out, err=err) == 0
    assert fhir.paths == ["/fhir", "/fhir"]
    assert all(ct.startswith("application/fhir+json") for ct in fhir.content_types)
    anna, bob = fhir.received
    assert anna["type"] == "transaction"
    requests_ = [e["request"] for e in anna["entry"]]
    assert all(r["method"] == "PUT" for r in requests_)
    urls = [r["url"] for r in requests_]
    # Referenced resources first; the draft order is not loaded; a stub for the requester.
    assert urls[:3] == ["Practitioner/example", "Medication/t-med-envarsus", "Patient/t-anna"]
    assert "Observation/t-anna-mg-3" in urls
    assert "MedicationStatement/t-anna-ms-1" in urls
    assert "MedicationRequest/request-123" not in urls
    assert all(e["fullUrl"] == f"{fhir.url}/{e['request']['url']}" for e in anna["entry"])
    assert [e["request"]["url"] for e in bob["entry"]] == [
        "Patient/t-bob",
        "Observation/t-bob-mg-1",
    ]
    assert "2 of 2 demo patients loaded" in out.getvalue()
    assert err.getvalue() == ""


def test_loading_twice_sends_the_same_puts(data: DemoData) -> None:
    first = transaction_bundles(data, "http://fhir.example/fhir")
    second = transaction_bundles(data, "http://fhir.example/fhir")
    assert [b for _, b in first] == [b for _, b in second]


def test_a_rejected_transaction_names_each_rejected_resource(data: DemoData) -> None:
    def reject_anna(bundle: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        urls = [e["request"]["url"] for e in bundle["entry"]]
        if "Patient/t-anna" not in urls:
            return _all_stored(bundle)
        position = urls.index("Observation/t-anna-k-1")
        return 422, {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "error",
                    "code": "processing",
                    "diagnostics": "Observation.effective[x]: period end is before its start",
                    "location": [f"Bundle.entry[{position}].resource"],
                },
                {
                    "severity": "error",
                    "code": "processing",
                    "diagnostics": "Unknown code 'mmol/L' in MedicationStatement/t-anna-ms-1",
                },
                {"severity": "information", "code": "informational", "diagnostics": "took 5 ms"},
            ],
        }

    out, err = io.StringIO(), io.StringIO()
    with FakeFhir(reject_anna) as fhir:
        assert load_fixtures(fhir.url, data=data, out=out, err=err) == 1
    errors = err.getvalue()
    assert "REJECTED t-anna" in errors
    assert "Observation/t-anna-k-1: error processing: Observation.effective[x]" in errors
    assert "MedicationStatement/t-anna-ms-1: error processing: Unknown code" in errors
    assert "took 5 ms" not in errors
    assert "loaded   t-bob" in out.getvalue()
    assert "1 of 2 demo patients loaded" in out.getvalue()


def test_per_entry_failures_in_a_transaction_response(data: DemoData) -> None:
    def one_bad_entry(bundle: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        status, body = _all_stored(bundle)
        if bundle["entry"][0]["request"]["url"] == "Patient/t-bob":
            body["entry"][1]["response"] = {
                "status": "400 Bad Request",
                "outcome": {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "invalid", "diagnostics": "bad unit"}],
                },
            }
        return status, body

    err = io.StringIO()
    with FakeFhir(one_bad_entry) as fhir:
        assert load_fixtures(fhir.url, data=data, out=io.StringIO(), err=err) == 1
    assert "Observation/t-bob-mg-1: error invalid: bad unit" in err.getvalue()


def test_an_unreachable_server_is_a_clear_error(data: DemoData) -> None:
    err = io.StringIO()
    assert load_fixtures("http://127.0.0.1:9/fhir", data=data, err=err, timeout_s=2) == 2
    assert "cannot reach the FHIR server at http://127.0.0.1:9/fhir" in err.getvalue()


def test_the_cli_command_posts_the_fixture_demo_patients(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with FakeFhir(_all_stored) as fhir:
        assert main(["load-fixtures", "--fhir", fhir.url]) == 0
    expected = len(DemoData.load().patients)
    assert expected > 0
    assert len(fhir.received) == len({p.patient_id for p in DemoData.load().patients})
    assert "demo patients loaded" in capsys.readouterr().out


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield
