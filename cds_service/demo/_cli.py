"""``cds-service demo``: the service with auth off, the demo FHIR endpoint, and sandbox URLs."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from ._data import FHIR_PATH, DemoData, sandbox_url

SANDBOX_ORIGIN = "https://sandbox.cds-hooks.org"
_RULE = "!" * 78
WARNING = f"""{_RULE}
!!  DEMO MODE: AUTHENTICATION IS OFF.
!!  Anyone who can reach this port can call the CDS services, and /demo/fhir serves
!!  the fictional demo patients to any origin. For trying the service in the CDS Hooks
!!  sandbox on your own machine only: never expose it or use it with real patient data.
{_RULE}"""


def public_base(host: str, port: int) -> str:
    """The URL a browser on this machine uses to reach a server bound to ``host``."""
    shown = "localhost" if host in ("0.0.0.0", "127.0.0.1", "::", "::1", "") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def demo_banner(data: DemoData, base_url: str) -> str:
    """What ``cds-service demo`` prints: the endpoints and one sandbox URL per demo patient."""
    lines = [
        f"CDS Hooks discovery:  {base_url}/cds-services",
        f"Demo FHIR endpoint:   {base_url}{FHIR_PATH}"
        "   (read-only test double over fixtures/, not a FHIR server)",
        f"Card viewer:          {base_url}/demo/viewer",
        "",
    ]
    if not data.patients:
        lines.append("No demo scenarios found in fixtures/scenarios/: the FHIR endpoint is empty.")
        return "\n".join(lines)
    lines.append(
        "Open a patient in the CDS Hooks sandbox (it runs in your browser and calls "
        "localhost directly):"
    )
    for patient in data.patients:
        lines.append("")
        who = f"{patient.name} ({patient.patient_id})" if patient.name else patient.patient_id
        lines.append(f"* {patient.title}")
        lines.append(f"  patient: {who}")
        where = f"  screen:  {patient.screen} ({patient.hook})"
        if patient.orders:
            where += ": order " + "; ".join(f'"{order}"' for order in patient.orders)
        lines.append(where)
        if patient.topics:
            lines.append(f"  cards:   {', '.join(patient.topics)}")
        lines.append(f"  {sandbox_url(base_url, patient.patient_id)}")
    return "\n".join(lines)


def run_demo(host: str, port: int, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Auth off, demo FHIR on; once the service is certain to start, print the warning and the
    URLs; run it with one worker. A problem raises ``ConfigurationError`` before anything runs."""
    from .._logging import configure_logging
    from ..serving import serve
    from ..settings import load_settings

    out = out or sys.stdout
    err = err or sys.stderr

    os.environ["CDS_AUTH_MODE"] = "off"
    os.environ["CDS_DEMO_FHIR"] = "1"
    settings = load_settings()
    configure_logging(settings.log_level, access_log=settings.access_log)

    def announce() -> None:
        print(WARNING, file=err, flush=True)
        origins = os.environ.get("CDS_CORS_ORIGINS", "")
        if origins and "*" not in origins and SANDBOX_ORIGIN not in origins:
            print(
                f"note: CDS_CORS_ORIGINS={origins} does not allow {SANDBOX_ORIGIN}: "
                "the sandbox will not be able to call the CDS services",
                file=err,
                flush=True,
            )
        print(demo_banner(DemoData.load(), public_base(host, port)), file=out, flush=True)

    return serve(settings, host=host, port=port, workers=1, announce=announce, err=err)
