"""Where the service may fetch FHIR data: the caller's allowlist, or public addresses only.

Three policies, chosen per call from who called (see ``fetch_policy``):

- **open** (authentication off): any ``fhirServer``, loopback included (the demo FHIR endpoint
  is on this machine);
- **allowlist** (a trusted client with ``fhir_servers``): a ``fhirServer`` must start with one
  of the listed base URLs, compared on parsed components and whole path segments, so
  ``https://ehr.example.org/fhir`` admits ``…/fhir/r4`` but not ``…/fhir-evil`` or
  ``https://ehr.example.org.evil.com/fhir``. The operator vouched for these servers, so their
  addresses are not checked (a hospital's FHIR server is often on a private network);
- **public only** (a trusted client without a list): every address the host resolves to must
  be a public unicast address. The check is made on the resolved address and the connection
  goes to exactly the address checked, so neither DNS nor a numeric trick (``0x7f.1``,
  ``::ffff:127.0.0.1``) can smuggle in loopback, a private or link-local network, or a cloud
  metadata endpoint.

Under every policy redirects are never followed (see ``_http``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Cloud instance-metadata endpoints: all are non-public anyway, named for a clearer reason.
_METADATA = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class FetchRefused(Exception):
    """The policy does not allow this fetch. The message names why, never the URL."""


@dataclass(frozen=True, slots=True)
class Origin:
    """A URL's scheme, host (lower case, IPv6 without brackets) and port."""

    scheme: str
    host: str
    port: int

    @property
    def key(self) -> str:
        """One FHIR server for the per-host limits: ``https://host:443``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def _split(url: str) -> SplitResult | None:
    try:
        return urlsplit(url)
    except ValueError:  # "http://[", an invalid IPv6 literal
        return None


def parse_origin(url: str) -> Origin | None:
    """The origin of an http(s) URL; None for anything else (no host, a bad port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    return Origin(scheme, host, port or _DEFAULT_PORTS[scheme])


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def non_public_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast address; None when it is one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and (reason := non_public_reason(embedded)):
            return reason
    if address in _METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a reserved address"
    return None


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def _ambiguous(segment: str) -> bool:
    """A segment a server might resolve to another path: ``..``, ``%2e``, ``a%2F..``, ``\\``."""
    decoded = unquote(segment)
    return decoded in (".", "..") or "/" in decoded or "\\" in decoded


def _path_segments(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


@dataclass(frozen=True, slots=True)
class _Prefix:
    origin: Origin
    segments: tuple[str, ...]

    def admits(self, origin: Origin, segments: list[str]) -> bool:
        return origin == self.origin and tuple(segments[: len(self.segments)]) == self.segments


def _prefix(url: str) -> _Prefix | None:
    origin = parse_origin(url)
    parts = _split(url)
    if origin is None or parts is None:
        return None
    return _Prefix(origin, tuple(_path_segments(parts.path)))


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """What one hook call may fetch. Build it with ``open``, ``allowlist`` or ``public_only``."""

    name: str
    servers: tuple[str, ...] | None = None
    """Allowed ``fhirServer`` prefixes; None when no list applies."""
    public_only: bool = False
    """Every resolved address must be public."""

    @classmethod
    def open(cls) -> FetchPolicy:
        return cls("open")

    @classmethod
    def allowlist(cls, servers: Iterable[str]) -> FetchPolicy:
        return cls("allowlist", servers=tuple(servers))

    @classmethod
    def public(cls) -> FetchPolicy:
        return cls("public-only", public_only=True)

    def check_server(self, fhir_server: str) -> None:
        """Raise ``FetchRefused`` when ``fhir_server`` may not be fetched from at all."""
        parts = _split(fhir_server)
        if parts is None:
            raise FetchRefused("fhirServer is not an http(s) URL with a host")
        if self.servers is not None and (parts.query or parts.fragment):
            raise FetchRefused("fhirServer has a query or a fragment")
        self.check_url(fhir_server)

    def check_url(self, url: str) -> None:
        """Raise ``FetchRefused`` unless ``url`` is on a listed server (when there is a list)."""
        origin = parse_origin(url)
        parts = _split(url)
        if origin is None or parts is None:
            raise FetchRefused("fhirServer is not an http(s) URL with a host")
        if parts.username is not None or parts.password is not None:
            raise FetchRefused("fhirServer carries credentials")
        if self.servers is None:
            return
        segments = _path_segments(parts.path)
        if any(_ambiguous(segment) for segment in segments):
            raise FetchRefused("the URL has dot segments or encoded slashes")
        for listed in self.servers:
            prefix = _prefix(listed)
            if prefix is not None and prefix.admits(origin, segments):
                return
        raise FetchRefused("fhirServer is not one of this client's fhir_servers")

    def check_address(self, address: IPAddress) -> None:
        """Raise ``FetchRefused`` when a connection to ``address`` is not allowed."""
        if self.public_only and (reason := non_public_reason(address)):
            raise FetchRefused(f"fhirServer resolves to {reason}, and only public ones are allowed")


OPEN = FetchPolicy.open()


def policy_for(*, authenticated: bool, fhir_servers: tuple[str, ...] | None) -> FetchPolicy:
    """Authentication off: open. A trusted client: its list, or public addresses only."""
    if not authenticated:
        return OPEN
    if fhir_servers is not None:
        return FetchPolicy.allowlist(fhir_servers)
    return FetchPolicy.public()
