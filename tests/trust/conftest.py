"""Fixtures: session-wide real keys, a JWKS server on 127.0.0.1, a clock the test controls."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from .support import Clock, JwksServer, SigningKey, handler_for, new_ec_key, new_rsa_key


@pytest.fixture(scope="session")
def ec_key() -> SigningKey:
    return new_ec_key()


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    return new_rsa_key()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    state = JwksServer(base_url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def clock() -> Clock:
    return Clock()
