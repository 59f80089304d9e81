"""The demo: a read-only FHIR R4 test double, a card viewer, and the ``demo`` commands.

``cds-service demo`` runs the service with authentication off and, in the same process, the demo
FHIR endpoint at ``/demo/fhir`` over the fixture scenarios marked ``"demo": true``, so the CDS
Hooks sandbox can be pointed at both. The endpoint is a test double for demos and tests, not a
FHIR server product: in-memory, read-only, fictional patients.

It is mounted when ``CDS_DEMO_FHIR`` is true, which is the default when authentication is off; it
is never mounted when authentication is on.
"""

from __future__ import annotations

from fastapi import FastAPI

from .._logging import get_logger
from ..settings import Settings
from ._cli import demo_banner, run_demo
from ._cors import DemoCorsMiddleware
from ._data import FHIR_PATH, SCREENS, DemoData, DemoPatient, sandbox_url
from ._fhir import fhir_router
from ._index import FhirIndex
from ._load import load_fixtures, transaction_bundles
from ._viewer import viewer_router

_log = get_logger(__name__)


def demo_enabled(settings: Settings, *, auth_off: bool) -> bool:
    """``CDS_DEMO_FHIR``: on by default when auth is off, never when auth is on."""
    if not auth_off and settings.demo_fhir:
        _log.warning("demo.refused", detail="CDS_DEMO_FHIR is ignored when auth is on")
    return settings.demo_fhir_for(auth_off=auth_off)


def mount_demo(app: FastAPI, data: DemoData | None = None) -> DemoData:
    """Add ``/demo/fhir`` (with its own permissive CORS) and the card viewer to ``app``."""
    data = data if data is not None else DemoData.load()
    app.include_router(fhir_router(data), prefix=FHIR_PATH)
    app.include_router(viewer_router(data), prefix="/demo")
    app.add_middleware(DemoCorsMiddleware)
    _log.warning(
        "demo.mounted",
        detail="read-only FHIR test double with fictional patients at /demo/fhir; development only",
        patients=len(data.patients),
        resources=data.index.counts(),
    )
    return data


__all__ = [
    "FHIR_PATH",
    "SCREENS",
    "DemoCorsMiddleware",
    "DemoData",
    "DemoPatient",
    "FhirIndex",
    "demo_banner",
    "demo_enabled",
    "load_fixtures",
    "mount_demo",
    "run_demo",
    "sandbox_url",
    "transaction_bundles",
]
