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


class FhirStatusError(FhirFetchError):
    """The server answered with a status other than 2xx; the message is "HTTP <status>".

    For a 4xx, ``codes`` are the issue codes of the OperationOutcome it sent (``not-supported``,
    ``invalid``, ...) and ``texts`` its issues' diagnostics, ``details.text``, ``expression``
    and ``location``: enough to tell a resource type or a search parameter the server does not
    support. A server may echo the request (the patient id) in them, so ``texts`` are read,
    never logged or put in a note.
    """

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        codes: tuple[str, ...] = (),
        texts: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message or f"HTTP {status}")
        self.status = status
        self.codes = codes
        self.texts = texts


class FhirClient(Protocol):
    """What the gatherer needs from a FHIR server; tests inject fakes."""

    def get_json(
        self, url: str, *, bearer: str | None, timeout_s: float, policy: FetchPolicy
    ) -> Any:
        """GET ``url`` and decode the JSON body, all within ``timeout_s``.

        The decoded body may be plain JSON or, for an object, already a ``Resource`` (the
        default client decodes straight into the models); the gatherer reads either.

        Raises ``FhirFetchError`` on a transport error or a non-JSON body, its subclass
        ``FhirStatusError`` on a non-2xx status (redirects included: they are never
        followed), ``FhirTimeoutError`` when ``timeout_s`` runs out, and ``FhirRefusedError``
        when ``policy`` does not allow the connection.
        """
        ...
