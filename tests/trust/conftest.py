"""Fixtures: session-wide real keys, a JWKS server on 127.0.0.1, a clock the test controls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..http_support import local_http_server
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
    with local_http_server(handler_for(state)) as base:
        state.base_url = base
        yield state


@pytest.fixture
def clock() -> Clock:
    return Clock()
