"""What the gatherer needs from a FHIR client, and how a fetch can fail."""

from __future__ import annotations

from typing import Any, Protocol

from ._policy import FetchPolicy


class FhirFetchError(Exception):
    """A fetch that produced no usable JSON.

    The message is logged and put in trace notes, so it must never carry the URL (it holds the
    patient id), a token or any resource content: "HTTP 404", "response is not JSON".
    """


class FhirTimeoutError(FhirFetchError):
    """The fetch did not complete within its time budget."""


class FhirRefusedError(FhirFetchError):
    """The call's ``FetchPolicy`` does not allow this fetch; the message says why."""


class FhirClient(Protocol):
    """What the gatherer needs from a FHIR server; tests inject fakes."""

    def get_json(
        self, url: str, *, bearer: str | None, timeout_s: float, policy: FetchPolicy
    ) -> Any:
        """GET ``url`` and decode the JSON body, all within ``timeout_s``.

        Raises ``FhirFetchError`` on a transport error, a non-2xx status (redirects included:
        they are never followed) or a non-JSON body, ``FhirTimeoutError`` when ``timeout_s``
        runs out, and ``FhirRefusedError`` when ``policy`` does not allow the connection.
        """
        ...
