"""The FHIR client against real local servers that misbehave: trickling, redirecting, closing.

The deadline tests time the client from the outside, in whole seconds with a wide margin: what
matters is that a fetch given one second does not take ten (or sixty), not how fast it is.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cds_service.gathering import (
    OPEN,
    FetchPolicy,
    FhirFetchError,
    FhirRefusedError,
    FhirStatusError,
    FhirTimeoutError,
    HttpFhirClient,
    SystemResolver,
)
from cds_service.gathering._policy import IPAddress
from cds_service.protocol import Resource

from ..raw_http import (
    Exchange,
    answer,
    chunked,
    gzipped,
    json_body,
    raw_server,
    redirect,
    response,
    trickle,
)

PATIENT = {"resourceType": "Patient", "id": "pat-1"}
# Generous: the fetch is given DEADLINE_S and must be over well before DEADLINE_S + MARGIN_S.
DEADLINE_S = 1.0
MARGIN_S = 2.0


def _read(resource: Resource) -> dict[str, Any]:
    """The members a decoded resource was sent with."""
    return {k: v for k, v in msgspec.structs.asdict(resource).items() if v is not None}


def _ok(target: str) -> tuple[str, Any]:
    return "200 OK", {**PATIENT, "target": target}


class FixedResolver:
    """Resolves every name to fixed addresses: no DNS, and nothing leaves this machine."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = [ipaddress.ip_address(a) for a in addresses]
        self.names: list[str] = []

    def resolve(self, host: str, timeout_s: float) -> Sequence[IPAddress]:
        self.names.append(host)
        return self.addresses


@pytest.fixture
def client() -> Any:
    fhir_client = HttpFhirClient()
    yield fhir_client
    fhir_client.close()


# --- deadlines --------------------------------------------------------------------------------


@pytest.mark.parametrize("head_first", [True, False], ids=["trickled-body", "trickled-head"])
def test_a_trickling_server_cannot_hold_a_fetch_past_its_deadline(
    client: HttpFhirClient, head_first: bool
) -> None:
    with raw_server(trickle(head_first=head_first)) as server:
        started = time.monotonic()
        with pytest.raises(FhirTimeoutError):
            client.get_json(
                f"{server.origin}/fhir/Patient/pat-1", bearer=None, timeout_s=DEADLINE_S
            )
        elapsed = time.monotonic() - started
        assert DEADLINE_S * 0.9 <= elapsed < DEADLINE_S + MARGIN_S
        # The server sees the connection closed, so no thread of ours is still reading.
        deadline = time.monotonic() + MARGIN_S
        while not server.hangups and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.hangups and server.hangups[0] - started < DEADLINE_S + MARGIN_S


def test_a_name_that_does_not_resolve_in_time_is_a_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()

    def hanging_getaddrinfo(*args: Any, **kwargs: Any) -> Any:
        release.wait(10)
        raise socket.gaierror("gave up")

    monkeypatch.setattr(socket, "getaddrinfo", hanging_getaddrinfo)
    fhir_client = HttpFhirClient(resolver=SystemResolver())
    started = time.monotonic()
    try:
        with pytest.raises(FhirTimeoutError, match="resolving"):
            fhir_client.get_json(
                "http://slow-dns.example.test/fhir/Patient/1", bearer=None, timeout_s=DEADLINE_S
            )
        assert time.monotonic() - started < DEADLINE_S + MARGIN_S
    finally:
        release.set()
        fhir_client.close()


def test_no_time_left_is_a_timeout_before_anything_is_sent(client: HttpFhirClient) -> None:
    with raw_server(answer(_ok)) as server:
        with pytest.raises(FhirTimeoutError):
            client.get_json(f"{server.origin}/fhir/Patient/1", bearer=None, timeout_s=0)
        assert server.connections == 0


# --- redirects and the fetch policy -------------------------------------------------------


@pytest.mark.parametrize("status", ["301 Moved Permanently", "302 Found", "307 Temporary Redirect"])
def test_a_redirect_to_another_loopback_server_is_not_followed(
    client: HttpFhirClient, status: str
) -> None:
    not_followed = r"HTTP 3\d\d \(redirects are not followed\)"
    with raw_server(answer(_ok)) as target:
        location = f"{target.origin}/latest/meta-data/"
        with (
            raw_server(redirect(location, status)) as server,
            pytest.raises(FhirFetchError, match=not_followed),
        ):
            client.get_json(f"{server.origin}/fhir/Patient/1", bearer="tok", timeout_s=2)
        assert target.connections == 0


def test_a_redirect_to_another_path_of_the_same_server_is_not_followed(
    client: HttpFhirClient,
) -> None:
    def respond(exchange: Exchange) -> bool:
        if exchange.target.startswith("/fhir/"):
            return redirect("/admin/secrets")(exchange)
        return answer(_ok)(exchange)

    with raw_server(respond) as server:
        with pytest.raises(FhirFetchError, match="redirects are not followed"):
            client.get_json(f"{server.origin}/fhir/Patient/1", bearer=None, timeout_s=2)
        assert server.paths() == ["/fhir/Patient/1"]


def test_public_only_refuses_a_loopback_address_before_connecting(client: HttpFhirClient) -> None:
    with raw_server(answer(_ok)) as server:
        with pytest.raises(FhirRefusedError, match="resolves to a loopback address"):
            client.get_json(
                f"{server.origin}/fhir/Patient/1",
                bearer=None,
                timeout_s=2,
                policy=FetchPolicy.public(),
            )
        assert server.connections == 0


def test_public_only_checks_the_resolved_address_so_dns_cannot_smuggle_loopback() -> None:
    resolver = FixedResolver("127.0.0.1")
    fhir_client = HttpFhirClient(resolver=resolver)
    with raw_server(answer(_ok)) as server:
        url = f"http://fhir.example.test:{server.port}/fhir/Patient/1"
        with pytest.raises(FhirRefusedError, match="loopback"):
            fhir_client.get_json(url, bearer=None, timeout_s=2, policy=FetchPolicy.public())
        assert resolver.names == ["fhir.example.test"]
        assert server.connections == 0
        # The same name is fetched from when the policy is open, at the address resolved.
        assert fhir_client.get_json(url, bearer=None, timeout_s=2).id == "pat-1"
        assert server.connections == 1
    fhir_client.close()


def test_a_host_resolving_to_any_non_public_address_is_refused() -> None:
    fhir_client = HttpFhirClient(resolver=FixedResolver("93.184.216.34", "127.0.0.1"))
    with pytest.raises(FhirRefusedError, match="loopback"):
        fhir_client.get_json(
            "http://mixed.example.test/fhir/Patient/1",
            bearer=None,
            timeout_s=2,
            policy=FetchPolicy.public(),
        )


@pytest.mark.parametrize(
    "host", ["0x7f.1", "2130706433", "127.1", "0177.0.0.1"], ids=["hex", "int", "short", "octal"]
)
def test_numeric_spellings_of_loopback_are_refused_after_resolution(
    client: HttpFhirClient, host: str
) -> None:
    # The system resolver turns these into 127.0.0.1; the check is on what it returns.
    with pytest.raises(FhirRefusedError, match="loopback"):
        client.get_json(
            f"http://{host}:9/fhir/Patient/1",
            bearer=None,
            timeout_s=2,
            policy=FetchPolicy.public(),
        )


def test_a_pooled_connection_is_not_reused_under_a_stricter_policy(
    client: HttpFhirClient,
) -> None:
    with raw_server(answer(_ok)) as server:
        url = f"{server.origin}/fhir/Patient/1"
        assert client.get_json(url, bearer=None, timeout_s=2, policy=OPEN).id == "pat-1"
        with pytest.raises(FhirRefusedError):
            client.get_json(url, bearer=None, timeout_s=2, policy=FetchPolicy.public())
        assert len(server.heads) == 1


# --- HTTP details -----------------------------------------------------------------------------


def test_connections_are_kept_alive_and_reused(client: HttpFhirClient) -> None:
    with raw_server(answer(_ok)) as server:
        for _ in range(3):
            client.get_json(f"{server.origin}/fhir/Patient/1", bearer="tok", timeout_s=2)
        assert server.connections == 1
        assert len(server.heads) == 3


def test_a_connection_the_server_closed_while_idle_is_replaced(client: HttpFhirClient) -> None:
    with raw_server(answer(_ok, close_after=True)) as server:
        for _ in range(3):
            assert client.get_json(f"{server.origin}/x", bearer=None, timeout_s=2).id == "pat-1"
        assert server.connections == 3


def test_request_head_carries_host_accept_and_the_bearer_token(client: HttpFhirClient) -> None:
    heads: list[Exchange] = []

    def respond(exchange: Exchange) -> bool:
        heads.append(exchange)
        return answer(_ok)(exchange)

    with raw_server(respond) as server:
        client.get_json(
            f"{server.origin}/fhir/Observation?patient=pat-1&code=http://loinc.org|19123-9",
            bearer="tok-123",
            timeout_s=2,
        )
    [exchange] = heads
    assert exchange.target == "/fhir/Observation?patient=pat-1&code=http://loinc.org%7C19123-9"
    assert exchange.header("Host") == f"127.0.0.1:{server.port}"
    assert exchange.header("Authorization") == "Bearer tok-123"
    assert exchange.header("Accept") == "application/fhir+json, application/json;q=0.9"
    assert exchange.header("Cookie") is None


def test_gzip_and_chunked_bodies_are_read(client: HttpFhirClient) -> None:
    with raw_server(gzipped(PATIENT)) as server:
        assert _read(client.get_json(f"{server.origin}/p", bearer=None, timeout_s=2)) == PATIENT
    with raw_server(chunked(PATIENT)) as server:
        assert _read(client.get_json(f"{server.origin}/p", bearer=None, timeout_s=2)) == PATIENT


def test_a_body_over_the_cap_is_refused_also_when_compressed() -> None:
    fhir_client = HttpFhirClient(max_bytes=1000)
    big = {"resourceType": "Bundle", "padding": "x" * 5000}
    too_large = pytest.raises(FhirFetchError, match="larger than 1000 bytes")
    with raw_server(answer(lambda _: ("200 OK", big))) as server, too_large:
        fhir_client.get_json(f"{server.origin}/p", bearer=None, timeout_s=2)
    too_large = pytest.raises(FhirFetchError, match="larger than 1000 bytes")
    with raw_server(gzipped(big)) as server, too_large:  # 5 kB of "x" gzips to a few dozen bytes
        fhir_client.get_json(f"{server.origin}/p", bearer=None, timeout_s=2)
    fhir_client.close()


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (response("404 Not Found", b"{}"), "HTTP 404"),
        (response("200 OK", b"<html>"), "response is not JSON"),
        (response("200 OK", b"{}", (("Content-Encoding", "br"),)), "unsupported Content-Encoding"),
        (response("200 OK", zlib.compress(b"x")[:3], (("Content-Encoding", "gzip"),)), "corrupt"),
        (b"NOT HTTP AT ALL\r\n\r\n", "malformed HTTP response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}", "closed before the response ended"),
        (b"", "connection closed without a response"),
    ],
    ids=["404", "html", "brotli", "corrupt-gzip", "garbage", "short-body", "no-response"],
)
def test_broken_answers_are_fetch_errors_without_the_url(
    client: HttpFhirClient, reply: bytes, message: str
) -> None:
    def respond(exchange: Exchange) -> bool:
        exchange.send(reply)
        return False

    with raw_server(respond) as server, pytest.raises(FhirFetchError, match=message) as caught:
        client.get_json(f"{server.origin}/fhir/Patient/secret-id", bearer="t", timeout_s=2)
    assert "secret-id" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "bearer", "message"),
    [
        ("ftp://example.org/x", None, "not an http"),
        ("http://user:pw@127.0.0.1:9/x", None, "credentials"),
        ("http://127.0.0.1:9/x", "tok\r\nX-Injected: 1", "invalid header"),
    ],
)
def test_requests_that_cannot_be_sent_are_fetch_errors(
    client: HttpFhirClient, url: str, bearer: str | None, message: str
) -> None:
    with pytest.raises(FhirFetchError, match=message):
        client.get_json(url, bearer=bearer, timeout_s=2)


def test_a_closed_port_is_a_transport_error(client: HttpFhirClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FhirFetchError, match=r"transport error \(ConnectionRefusedError\)"):
        client.get_json(f"http://127.0.0.1:{port}/x", bearer=None, timeout_s=2)


# --- decoding -------------------------------------------------------------------------------------


def test_a_body_is_decoded_into_the_models_with_the_precision_it_was_written_with(
    client: HttpFhirClient,
) -> None:
    body = (
        b'{"resourceType": "Observation", "id": "o1", "valueQuantity": {"value": 1.20},'
        b' "text": {"div": "skipped"}, "category": [{"text": "skipped"}]}'
    )

    def respond(exchange: Exchange) -> bool:
        return exchange.send(response("200 OK", body))

    with raw_server(respond) as server:
        decoded = client.get_json(f"{server.origin}/fhir/Observation/o1", bearer=None, timeout_s=2)
    assert isinstance(decoded, Resource)
    assert str(decoded.valueQuantity.value) == "1.20"


@pytest.mark.parametrize(
    ("body", "decoded"),
    [(b"[1, 2]", [1, 2]), (b'"text"', "text"), (b"null", None)],
    ids=["array", "string", "null"],
)
def test_other_json_values_are_returned_as_they_are(
    client: HttpFhirClient, body: bytes, decoded: Any
) -> None:
    def respond(exchange: Exchange) -> bool:
        return exchange.send(response("200 OK", body))

    with raw_server(respond) as server:
        assert client.get_json(f"{server.origin}/x", bearer=None, timeout_s=2) == decoded


# --- refusals: the status, and what the OperationOutcome says -----------------------------------

_REFUSAL = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "invalid",
            "diagnostics": "_count 1000 is over 200 for Observation?patient=secret-id",
            "details": {"text": "Invalid _count"},
            "expression": ["Observation._count"],
        },
        {"severity": "error", "code": "not-supported", "location": ["http._sort"]},
    ],
}


def test_a_4xx_carries_its_status_and_outcome_and_keeps_the_connection(
    client: HttpFhirClient,
) -> None:
    def route(target: str) -> tuple[str, Any]:
        return ("400 Bad Request", _REFUSAL) if "_count" in target else ("200 OK", PATIENT)

    with raw_server(answer(route)) as server:
        url = f"{server.origin}/fhir/Observation?patient=secret-id&_count=1000"
        with pytest.raises(FhirStatusError) as caught:
            client.get_json(url, bearer="tok", timeout_s=2)
        assert client.get_json(f"{server.origin}/fhir/Patient/1", bearer=None, timeout_s=2)
        assert server.connections == 1  # the refusal was read whole: the connection stays
    error = caught.value
    assert (error.status, str(error)) == (400, "HTTP 400")
    assert error.codes == ("invalid", "not-supported")
    assert error.texts == (
        "_count 1000 is over 200 for Observation?patient=secret-id",
        "Invalid _count",
        "Observation._count",
        "http._sort",
    )


@pytest.mark.parametrize(
    ("reply", "status", "message"),
    [
        (response("404 Not Found", b"<html>not found</html>"), 404, "HTTP 404"),
        (response("422 Unprocessable Entity", b'{"resourceType": "Patient"}'), 422, "HTTP 422"),
        (response("500 Internal Server Error", json_body(_REFUSAL)), 500, "HTTP 500"),
        (redirect("http://127.0.0.1:9/x"), 302, "HTTP 302 (redirects are not followed)"),
    ],
    ids=["404-html", "422-not-an-outcome", "500-outcome-not-read", "302"],
)
def test_other_refusals_carry_their_status_alone(
    client: HttpFhirClient, reply: Any, status: int, message: str
) -> None:
    def respond(exchange: Exchange) -> bool:
        if callable(reply):
            return bool(reply(exchange))
        exchange.send(reply)
        return False

    with raw_server(respond) as server, pytest.raises(FhirStatusError) as caught:
        client.get_json(f"{server.origin}/fhir/Patient/secret-id", bearer=None, timeout_s=2)
    assert (caught.value.status, str(caught.value)) == (status, message)
    assert (caught.value.codes, caught.value.texts) == ((), ())


def test_an_outcome_too_large_to_read_leaves_the_status_alone() -> None:
    big = {**_REFUSAL, "padding": "x" * 70_000}
    with raw_server(answer(lambda _: ("400 Bad Request", big))) as server:
        fhir_client = HttpFhirClient()
        with pytest.raises(FhirStatusError) as caught:
            fhir_client.get_json(f"{server.origin}/fhir/Observation", bearer=None, timeout_s=2)
        fhir_client.close()
    assert (caught.value.status, caught.value.codes) == (400, ())


# --- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class _TlsServer:
    """A RawServer whose accepted sockets are wrapped in TLS before the request is read."""

    def __init__(self, certificate: tuple[Path, Path], responder: Any) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(*certificate)
        self.responder = responder
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(5)
            with self.context.wrap_socket(sock, server_side=True) as tls:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = tls.recv(65536)
                    if not chunk:
                        return
                    head += chunk
                tls.sendall(self.responder)
        except OSError:
            return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.listener.close()


def test_https_is_verified_against_the_trusted_certificates(
    certificate: tuple[Path, Path],
) -> None:
    reply = response("200 OK", b'{"resourceType": "Patient", "id": "tls"}')
    server = _TlsServer(certificate, reply)
    try:
        trusting = ssl.create_default_context(cafile=str(certificate[0]))
        fhir_client = HttpFhirClient(tls=trusting)
        for host in ("127.0.0.1", "localhost"):
            url = f"https://{host}:{server.port}/fhir/Patient/tls"
            assert fhir_client.get_json(url, bearer="tok", timeout_s=5).id == "tls"
        fhir_client.close()
        # The system's trust store does not know this certificate.
        with pytest.raises(FhirFetchError, match="TLS certificate not trusted"):
            HttpFhirClient().get_json(
                f"https://127.0.0.1:{server.port}/fhir/Patient/tls", bearer="tok", timeout_s=5
            )
    finally:
        server.close()


def test_a_tls_server_that_never_completes_its_handshake_is_a_timeout() -> None:
    # A plain TCP server that accepts and then says nothing: the handshake waits for it.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(FhirTimeoutError):
            HttpFhirClient().get_json(
                f"https://127.0.0.1:{port}/fhir/Patient/1", bearer=None, timeout_s=DEADLINE_S
            )
        assert time.monotonic() - started < DEADLINE_S + MARGIN_S
