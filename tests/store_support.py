"""A real store under the service (SQLite or PostgreSQL), the app around it, and a real server.

The PostgreSQL helpers are the store tests' own (tests/store), so both suites skip the same way
when the server is not there. Test modules declare their fixtures with :func:`database_url_for`;
importing fixtures across modules would confuse the linters.
"""

from __future__ import annotations

import copy
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select

from cds_service.content import Content
from cds_service.pipeline import CdsService, HookResult
from cds_service.store import Store
from cds_service.store._schema import feedback

from .settings_support import make_settings
from .store.support import Clock, fresh_pg_schema, pg_schema_url, timestamp
from .support import REPO, RefusingFhirClient, make_client, shipped_content

DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


# -- databases ------------------------------------------------------------------------------------


@contextmanager
def database_url_for(kind: str, tmp_path: Path) -> Iterator[str]:
    """``kind`` is "sqlite" (a file under ``tmp_path``) or "postgresql" (a fresh schema)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'cds.sqlite3'}"
        return
    with fresh_pg_schema() as schema:
        yield pg_schema_url(schema)


def feedback_rows(url: str) -> dict[str, int]:
    """Stored feedback rows per card uuid, read straight from the table on a new connection."""
    engine = create_engine(url)
    try:
        query = select(feedback.c.card_uuid, func.count()).group_by(feedback.c.card_uuid)
        with engine.connect() as connection:
            return {row[0]: int(row[1]) for row in connection.execute(query)}
    finally:
        engine.dispose()


# -- feedback items as a CDS client sends them -------------------------------------------------


def reason_coding(card: dict[str, Any], code: str) -> dict[str, Any]:
    """The coding as the card offered it: feedback echoes one of the card's overrideReasons."""
    [coding] = [r for r in card["overrideReasons"] if r["code"] == code]
    return dict(coding)


def overridden(card: dict[str, Any], reason: str, *, at: datetime) -> dict[str, Any]:
    return {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": reason_coding(card, reason)},
        "outcomeTimestamp": timestamp(at),
    }


def accepted(card: dict[str, Any], *, at: datetime) -> dict[str, Any]:
    """Accepted, taking the card's first suggestion."""
    return {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": timestamp(at),
    }


def feedback_counters(client: TestClient) -> dict[str, float]:
    """``cds_feedback_total`` by outcome, as the app's /metrics shows them."""
    text = client.get("/metrics").text
    counters = re.findall(r'^cds_feedback_total\{outcome="(\w+)"\} (\S+)$', text, flags=re.M)
    return {outcome: float(value) for outcome, value in counters}


# -- the service over a real store ---------------------------------------------------------------


@dataclass
class Harness:
    service: CdsService
    client: TestClient
    store: Store
    clock: Clock

    def hook(self, service_id: str, request: dict[str, Any]) -> HookResult:
        """Through the service itself, for the evaluation (what was withheld and why)."""
        return self.service.hook(service_id, copy.deepcopy(request))

    def post(self, service_id: str, request: dict[str, Any]) -> list[dict[str, Any]]:
        """Through HTTP, for the response a CDS client sees."""
        response = self.client.post(f"/cds-services/{service_id}", json=request)
        assert response.status_code == 200, response.text
        cards: list[dict[str, Any]] = response.json()["cards"]
        return cards

    def feedback(self, service_id: str, *items: dict[str, Any]) -> None:
        response = self.client.post(
            f"/cds-services/{service_id}/feedback", json={"feedback": list(items)}
        )
        assert response.status_code == 200, response.text
        assert response.json() == {}

    def override(self, service_id: str, card: dict[str, Any], reason: str) -> dict[str, Any]:
        item = overridden(card, reason, at=self.clock())
        self.feedback(service_id, item)
        return item

    def accept(self, service_id: str, card: dict[str, Any]) -> dict[str, Any]:
        item = accepted(card, at=self.clock())
        self.feedback(service_id, item)
        return item


@contextmanager
def harness(url: str, clock: Clock, content: Content | None = None) -> Iterator[Harness]:
    """The app around a ``CdsService`` on a store at ``url``; service and store share ``clock``."""
    store = Store.open(url, clock=clock)
    try:
        service = CdsService(
            # A fixed key: patient hashes must agree between the services of one test.
            settings=make_settings(patient_hash_key="store-support"),
            content=content or shipped_content(),
            store=store,
            fhir_client=RefusingFhirClient(),
            clock=clock,
        )
        yield Harness(service, make_client(service), store, clock)
    finally:
        store.close()


def feedback_topics(url: str) -> dict[str, str | None]:
    """The topic each stored feedback row was linked to (None: never linked to a card)."""
    engine = create_engine(url)
    try:
        query = select(feedback.c.card_uuid, feedback.c.topic)
        with engine.connect() as connection:
            return {row[0]: row[1] for row in connection.execute(query)}
    finally:
        engine.dispose()


# -- the real server: ``cds-service serve`` in a child process ----------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def kill(self) -> None:
        """SIGKILL the server process itself: no shutdown hook, no writer drain, no atexit."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        """SIGTERM (uvicorn's graceful shutdown, through its supervisor with --workers N)."""
        self.process.terminate()
        self.process.wait(60)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serve(
    database_url: str, log: Path, *, workers: int, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """A server on a free port, ready when this yields; killed (with its workers) on exit.

    The child gets a session of its own, and ``finally`` kills that process group: the server
    and its workers, even when the supervisor was the one already killed.
    """
    environment = {
        **os.environ,
        "CDS_DATABASE_URL": database_url,
        "CDS_AUTH_MODE": "off",
        # One key for every worker and restart, so patient hashes agree.
        "CDS_PATIENT_HASH_KEY": "store-support",
        **(env or {}),
    }
    environment.pop("CDS_TRUST_FILE", None)
    port = free_port()
    command = [sys.executable, "-m", "cds_service.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers)]
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        _wait_until_ready(server, workers)
        yield server
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            process.wait(30)


def _wait_until_ready(server: Server, workers: int) -> None:
    """Until /readyz answers and every worker has started (else one takes all the requests)."""
    deadline = time.monotonic() + 60
    while True:
        with suppress(requests.ConnectionError):
            response = requests.get(f"{server.base}/readyz", timeout=2)
            started = server.output().count("Application startup complete.")
            if response.status_code == 200 and started >= workers:
                return
        assert server.process.poll() is None, f"service exited:\n{server.output()}"
        assert time.monotonic() < deadline, f"service did not start:\n{server.output()}"
        time.sleep(0.1)
