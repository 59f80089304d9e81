"""Prometheus metrics, one registry for the process (multi-worker: each worker exposes its own)."""

from __future__ import annotations

import platform
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, Info

from . import __version__

REGISTRY = CollectorRegistry(auto_describe=True)

# Exposed as cds_build_info{version="…",python="…"} 1.
BUILD = Info("cds_build", "The running service's version", registry=REGISTRY)
BUILD.info({"version": __version__, "python": platform.python_version()})

REQUEST_LATENCY = Histogram(
    "cds_request_seconds",
    "Hook request latency by service",
    ["service"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
RESPONSES = Counter(
    "cds_responses_total",
    "Hook responses by service and HTTP status",
    ["service", "status"],
    registry=REGISTRY,
)
CARDS = Counter(
    "cds_cards_total",
    "Cards returned by topic and indicator",
    ["topic", "indicator"],
    registry=REGISTRY,
)
CARDS_SNOOZED = Counter(
    "cds_cards_snoozed_total", "Cards withheld by snooze", ["topic"], registry=REGISTRY
)
PREFETCH = Counter(
    "cds_prefetch_total",
    "Prefetch keys by outcome (hit, null, miss)",
    ["key", "outcome"],
    registry=REGISTRY,
)
FHIR_FALLBACK = Counter(
    "cds_fhir_fallback_total",
    "FHIR server fetches by outcome (ok, failed, timeout, refused, unsupported: the server "
    "does not have the resource type); a search asked again counts once",
    ["outcome"],
    registry=REGISTRY,
)
FHIR_ADAPTATIONS = Counter(
    "cds_fhir_adaptations_total",
    "Requests a FHIR server refused that taught the service how to ask it (remembered per "
    "server): unsupported_type, page_size (_count too large), sort (_sort not supported)",
    ["kind", "resource"],
    registry=REGISTRY,
)
FHIR_UNSUPPORTED = Counter(
    "cds_fhir_unsupported_total",
    "Prefetch keys and Medication references taken as no data because the FHIR server does not "
    "have the resource type, by where that was known from: server (its answer to this call), "
    "memory (an earlier answer) or profile (the client's trust-file profile)",
    ["resource", "known_from"],
    registry=REGISTRY,
)
FEEDBACK = Counter(
    "cds_feedback_total", "Feedback items stored by outcome", ["outcome"], registry=REGISTRY
)
AUTH_FAILURES = Counter("cds_auth_failures_total", "Rejected tokens", registry=REGISTRY)
UNRECOGNISED_UNITS = Counter(
    "cds_unrecognised_units_total",
    "Lab results skipped for an unrecognised unit",
    ["analyte"],
    registry=REGISTRY,
)
CONTENT_INFO = Info(
    "cds_content",
    "The content of cards/ each profile serves: version, release date and fingerprint",
    ["profile"],
    registry=REGISTRY,
)


def set_content_info(profile: str, version: Mapping[str, str]) -> None:
    """``cds_content_info{profile, version, released, fingerprint} 1``."""
    CONTENT_INFO.labels(profile).info(dict(version))


OTHER_PATIENT = Counter(
    "cds_other_patient_resources_total",
    "Resources dropped because their subject is another patient than context.patientId",
    ["resource_type"],
    registry=REGISTRY,
)
CONNECTIONS_DROPPED = Counter(
    "cds_connections_dropped_total",
    "Connections the server closed on a client: header-too-large, header-timeout, "
    "body-timeout, evicted (room for a new one at the cap), over-capacity",
    ["reason"],
    registry=REGISTRY,
)
CLIENT_ABORTS = Counter(
    "cds_client_aborts_total",
    "Requests whose client disconnected before its body was read",
    ["route"],
    registry=REGISTRY,
)
