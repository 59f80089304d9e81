"""Where the service may fetch: addresses, the allowlist's prefix match, the policy per caller.

No network here: the address checks are pure functions of the address.
"""

from __future__ import annotations

import ipaddress

import pytest

from cds_service.gathering import OPEN, FetchPolicy, FetchRefused, non_public_reason, policy_for
from cds_service.pipeline import fetch_policy
from cds_service.trust import VerifiedCaller


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("169.254.10.20", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("100.64.0.1", "a reserved address"),  # carrier-grade NAT, shared address space
        ("198.18.0.1", "a private address"),  # benchmarking range
        # IPv4 inside IPv6: mapped, NAT64, 6to4, each carrying a non-public IPv4 address
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::ffff:169.254.169.254", "a cloud metadata address"),
        ("64:ff9b::a00:1", "a private address"),
        ("2002:a00:1::", "a private address"),
    ],
)
def test_non_public_addresses_are_named(address: str, reason: str) -> None:
    assert non_public_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2001:4860:4860::8888"])
def test_public_addresses_pass(address: str) -> None:
    assert non_public_reason(ipaddress.ip_address(address)) is None
    FetchPolicy.public().check_address(ipaddress.ip_address(address))


def test_public_only_refuses_a_private_address_with_the_reason() -> None:
    with pytest.raises(FetchRefused, match="resolves to a private address"):
        FetchPolicy.public().check_address(ipaddress.ip_address("10.0.0.5"))


def test_open_and_allowlist_policies_do_not_check_addresses() -> None:
    loopback = ipaddress.ip_address("127.0.0.1")
    OPEN.check_address(loopback)
    FetchPolicy.allowlist(["http://127.0.0.1:8080/fhir"]).check_address(loopback)


LISTED = FetchPolicy.allowlist(
    ["https://ehr.example.org/fhir/", "https://other.example.org:8443/r4/tenant-a"]
)


@pytest.mark.parametrize(
    "fhir_server",
    [
        "https://ehr.example.org/fhir",
        "https://ehr.example.org/fhir/",
        "https://ehr.example.org/fhir/r4",
        "https://EHR.example.org/fhir",  # host names are case-insensitive
        "https://ehr.example.org:443/fhir",  # the default port, spelled out
        "https://other.example.org:8443/r4/tenant-a",
    ],
)
def test_allowlist_admits_listed_servers_and_paths_below_them(fhir_server: str) -> None:
    LISTED.check_server(fhir_server)


@pytest.mark.parametrize(
    ("fhir_server", "reason"),
    [
        ("https://ehr.example.org/fhir-evil", "not one of this client's fhir_servers"),
        ("https://ehr.example.org/", "not one of this client's fhir_servers"),
        ("https://ehr.example.org.evil.com/fhir", "not one of this client's fhir_servers"),
        ("https://ehr.example.org@evil.com/fhir", "carries credentials"),
        ("https://user:pw@ehr.example.org/fhir", "carries credentials"),
        ("http://ehr.example.org/fhir", "not one of this client's fhir_servers"),
        ("https://ehr.example.org:8443/fhir", "not one of this client's fhir_servers"),
        ("https://other.example.org:8443/r4/tenant-b", "not one of this client's fhir_servers"),
        ("https://ehr.example.org/fhir/../admin", "dot segments"),
        ("https://ehr.example.org/fhir/%2e%2e/admin", "dot segments"),
        ("https://ehr.example.org/fhir/x%2F..%2F..%2Fadmin", "encoded slashes"),
        ("https://ehr.example.org/fhir?x=1", "a query or a fragment"),
        ("ftp://ehr.example.org/fhir", "not an http(s) URL"),
        ("https:///fhir", "not an http(s) URL"),
        ("http://[", "not an http(s) URL"),  # urlsplit raises: once a 500
        ("http://ehr.example.org:99999/fhir", "not an http(s) URL"),
    ],
)
def test_allowlist_refuses_everything_else_with_the_reason(fhir_server: str, reason: str) -> None:
    with pytest.raises(FetchRefused, match=reason.replace("(", r"\(").replace(")", r"\)")):
        LISTED.check_server(fhir_server)


def test_next_links_and_medication_urls_are_checked_against_the_list_too() -> None:
    LISTED.check_url("https://ehr.example.org/fhir/Observation?page=2&patient=x")
    with pytest.raises(FetchRefused):
        LISTED.check_url("https://ehr.example.org/admin/Observation?page=2")


def test_open_policy_keeps_todays_freedom() -> None:
    OPEN.check_server("http://127.0.0.1:8080/demo/fhir")
    OPEN.check_server("http://localhost:8080/demo/fhir?odd=but-allowed")


def test_the_policy_follows_the_caller() -> None:
    assert policy_for(authenticated=False, fhir_servers=None) == OPEN
    assert fetch_policy(None) == OPEN
    unlisted = VerifiedCaller("https://ehr.example.org", None, "j", None, "k", "ES384")
    assert fetch_policy(unlisted).public_only
    assert fetch_policy(unlisted).servers is None
    listed = VerifiedCaller(
        "https://ehr.example.org", None, "j", None, "k", "ES384", ("https://ehr.example.org/r4",)
    )
    assert fetch_policy(listed).servers == ("https://ehr.example.org/r4",)
    assert not fetch_policy(listed).public_only


@pytest.mark.parametrize("url", ["http://[", "http://[::1", "http://x:port/"])
def test_unparseable_urls_are_refused_by_every_policy(url: str) -> None:
    for policy in (OPEN, FetchPolicy.public(), LISTED):
        with pytest.raises(FetchRefused):
            policy.check_server(url)
