"""``cds-service demo`` as a process, driven the way the CDS Hooks sandbox drives it.

The sandbox runs in the browser: it reads ``/metadata``, the patient and the patient's
conditions from ``fhirServiceUrl``, fills in each service's prefetch templates with the patient
id, URI-encodes every query value, fetches them from the FHIR server itself (so CORS headers
must be there) and posts the hook call with the results as ``prefetch``. For Rx View and Rx Sign
it sends its draft MedicationRequest (``request-123``, no ``Bundle.type``). A search is tried
first as ``POST [type]/_search`` with a form body, then as ``GET``: both must answer.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import pytest
import requests

from cds_service.demo import DemoData, DemoPatient
from cds_service.rules import RULES as TOPIC_CODES

from .support import SANDBOX_ORIGIN, demo_process, free_port

TOPICS = frozenset(TOPIC_CODES)
_URI_COMPONENT_SAFE = "-_.!~*'()"  # what JavaScript's encodeURIComponent leaves as is
BROWSER = {"Origin": SANDBOX_ORIGIN, "Accept": "application/json+fhir"}


def sandbox_query(template: str, patient_id: str) -> str:
    """The sandbox's completePrefetchTemplate + encodeUriParameters (query-string sorts keys)."""
    filled = template.replace("{{context.patientId}}", patient_id)
    if "?" not in filled:
        return filled
    path, query = filled.split("?", 1)
    params = sorted(parse_qsl(query, keep_blank_values=True))
    return path + "?" + "&".join(f"{k}={quote(v, safe=_URI_COMPONENT_SAFE)}" for k, v in params)


def _cors_post_search(fhir: str, query: str) -> requests.Response:
    """The search as a form posted to ``[type]/_search``, as the browser sends it."""
    resource_type, params = query.split("?", 1)
    response = requests.post(
        f"{fhir}/{resource_type}/_search",
        data=params,
        headers={**BROWSER, "Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
        timeout=10,
    )
    allowed = response.headers.get("access-control-allow-origin")
    assert allowed in ("*", SANDBOX_ORIGIN), f"no CORS header on POST {query}"
    return response


def _cors_get(url: str) -> requests.Response:
    response = requests.get(url, headers=BROWSER, timeout=10)
    allowed = response.headers.get("access-control-allow-origin")
    assert allowed in ("*", SANDBOX_ORIGIN), f"no CORS header on {url}"
    return response


def _hook_request(
    patient: DemoPatient, hook: str, fhir: str, prefetch: dict[str, Any]
) -> dict[str, Any]:
    scenario_context = patient.request["context"]
    context: dict[str, Any] = {
        "patientId": patient.patient_id,
        "userId": scenario_context.get("userId", "Practitioner/COREPRACTITIONER1"),
    }
    if hook == "order-select":
        context["selections"] = scenario_context["selections"]
    if hook in ("order-select", "order-sign"):
        context["draftOrders"] = scenario_context["draftOrders"]
    return {
        "hookInstance": str(uuid.uuid4()),
        "hook": hook,
        "fhirServer": fhir,
        "context": context,
        "prefetch": prefetch,
    }


def _topics(body: dict[str, Any]) -> set[str]:
    return {card["source"]["topic"]["code"] for card in body["cards"]}


@pytest.mark.slow
def test_the_sandbox_sees_every_topic(tmp_path: Path) -> None:
    data = DemoData.load()
    assert data.patients, "no demo scenarios in fixtures/scenarios/"
    with demo_process(tmp_path, free_port()) as (base, _process):
        fhir = f"{base}/demo/fhir"
        services = requests.get(f"{base}/cds-services", headers=BROWSER, timeout=10).json()
        by_hook = {s["hook"]: s for s in services["services"]}
        assert set(by_hook) == {"patient-view", "order-select", "order-sign"}

        # Page load: the sandbox checks the FHIR server.
        metadata = _cors_get(f"{fhir}/metadata").json()
        assert metadata["fhirVersion"] == "4.0.1"
        preflight = requests.options(
            f"{fhir}/Observation",
            headers={
                "Origin": SANDBOX_ORIGIN,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
            timeout=10,
        )
        assert preflight.status_code in (200, 204)
        assert preflight.headers["access-control-allow-origin"] == "*"

        seen: dict[str, set[str]] = {}
        missing: list[str] = []
        for patient in data.patients:
            # Opening the patient: its Patient resource and conditions (for Rx View).
            assert _cors_get(f"{fhir}/Patient/{patient.patient_id}").status_code == 200
            assert _cors_get(f"{fhir}/Condition?patient={patient.patient_id}").ok
            # patient-view fires when the patient opens; the scenario's screen fires its hook.
            hooks = dict.fromkeys(["patient-view", patient.hook])
            for hook in hooks:
                service = by_hook[hook]
                prefetch = {}
                for key, template in service["prefetch"].items():
                    query = sandbox_query(template, patient.patient_id)
                    response = _cors_get(f"{fhir}/{query}")
                    assert response.status_code == 200, (patient.scenario, key, response.text)
                    prefetch[key] = response.json()
                    if "?" in query:
                        posted = _cors_post_search(fhir, query)
                        assert posted.status_code == 200, (patient.scenario, key, posted.text)
                        assert posted.json() == prefetch[key], (patient.scenario, key)
                call = requests.post(
                    f"{base}/cds-services/{service['id']}",
                    json=_hook_request(patient, hook, fhir, prefetch),
                    headers={
                        "Origin": SANDBOX_ORIGIN,
                        "Accept": "application/json",
                        "Authorization": "Bearer sandbox-jwt-not-checked-in-demo-mode",
                    },
                    timeout=10,
                )
                assert call.status_code == 200, (patient.scenario, hook, call.text)
                assert call.headers.get("access-control-allow-origin") in ("*", SANDBOX_ORIGIN)
                topics = _topics(call.json())
                for topic in topics:
                    seen.setdefault(topic, set()).add(hook)
                if hook == patient.hook and not set(patient.topics) <= topics:
                    missing.append(
                        f"{patient.scenario} ({hook}): expected {sorted(patient.topics)}, "
                        f"got {sorted(topics)}"
                    )
            # Without prefetch the service fetches the same data from fhirServer itself.
            bare = _hook_request(patient, patient.hook, fhir, {})
            del bare["prefetch"]
            fetched = requests.post(
                f"{base}/cds-services/{by_hook[patient.hook]['id']}", json=bare, timeout=10
            )
            assert fetched.status_code == 200, (patient.scenario, fetched.text)
            if not set(patient.topics) <= _topics(fetched.json()):
                missing.append(f"{patient.scenario} (no prefetch): got {_topics(fetched.json())}")
    assert set(seen) == TOPICS, f"topics never shown: {sorted(TOPICS - set(seen))}"
    assert not missing, "\n".join(missing)
