"""The narrow FHIR client the gatherer needs, and its default implementation over requests."""

from __future__ import annotations

import time
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Protocol

import orjson
import requests
from requests.adapters import HTTPAdapter

_ACCEPT = "application/fhir+json, application/json;q=0.9"
_CHUNK_BYTES = 64 * 1024


class FhirFetchError(Exception):
    """A fetch that produced no usable JSON.

    The message is logged and put in trace notes, so it must never carry the URL (it holds the
    patient id), a token or any resource content: "HTTP 404", "response is not JSON".
    """


class FhirTimeoutError(FhirFetchError):
    """The fetch did not complete within its time budget."""


class FhirClient(Protocol):
    """What the gatherer needs from a FHIR server; tests inject fakes."""

    def get_json(self, url: str, *, bearer: str | None, timeout_s: float) -> Any:
        """GET ``url`` and decode the JSON body.

        Raises ``FhirFetchError`` on a transport error, a non-2xx status or a non-JSON body,
        and ``FhirTimeoutError`` when ``timeout_s`` runs out.
        """
        ...


class RequestsFhirClient:
    """The default client: one pooled ``requests.Session`` shared by the fetch threads.

    Thread-safe use: nothing per request is stored on the session (headers are passed per call)
    and cookies are refused, so one patient's or user's fetch can never carry state into another.
    """

    def __init__(self, *, pool_size: int = 32, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        session = requests.Session()
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._session = session

    def get_json(self, url: str, *, bearer: str | None, timeout_s: float) -> Any:
        if timeout_s <= 0:
            raise FhirTimeoutError("timed out")
        deadline = time.monotonic() + timeout_s
        headers = {"Accept": _ACCEPT}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        try:
            # requests drops Authorization itself when a redirect leaves the host.
            with self._session.get(url, headers=headers, timeout=timeout_s, stream=True) as resp:
                if not 200 <= resp.status_code < 300:
                    raise FhirFetchError(f"HTTP {resp.status_code}")
                body = self._read(resp, deadline)
        except requests.Timeout:
            raise FhirTimeoutError("timed out") from None
        except requests.RequestException as exc:
            # requests' own messages quote the URL, and with it the patient id.
            raise FhirFetchError(f"transport error ({type(exc).__name__})") from None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise FhirFetchError("response is not JSON") from None

    def _read(self, resp: requests.Response, deadline: float) -> bytes:
        # The socket timeout bounds each read, not the whole body: a server that trickles
        # bytes must still not outlive the deadline or fill memory.
        chunks: list[bytes] = []
        size = 0
        for chunk in resp.iter_content(chunk_size=_CHUNK_BYTES):
            size += len(chunk)
            if size > self._max_bytes:
                raise FhirFetchError(f"response larger than {self._max_bytes} bytes")
            if time.monotonic() > deadline:
                raise FhirTimeoutError("timed out")
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self._session.close()
