"""Fixtures: a real local FHIR endpoint per test and one pooled client for the session."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from cds_service.gathering import RequestsFhirClient

from .support import FakeFhirServer


@pytest.fixture
def fhir() -> Iterator[FakeFhirServer]:
    server = FakeFhirServer()
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def client() -> Iterator[RequestsFhirClient]:
    fhir_client = RequestsFhirClient()
    yield fhir_client
    fhir_client.close()
