"""``cds-service load-fixtures --fhir URL``: the demo patients into a real FHIR server.

One transaction Bundle per demo patient, every entry a ``PUT`` with the fixture's id, so
loading twice leaves the server as loading once. What the server rejects is reported per
resource from the response's ``OperationOutcome``s.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import Any, TextIO

import requests

from ._data import DemoData, DemoPatient, prefetch_resources
from ._index import TYPES
from ._search import Resource

FHIR_JSON = "application/fhir+json"
_ENTRY_INDEX = re.compile(r"entry\[(\d+)\]")
# Resources the fixtures reference without holding (MedicationRequest.requester): a stub for
# each, so a server that checks references accepts the bundle.
_STUBS = {
    "Practitioner": lambda rid: {
        "resourceType": "Practitioner",
        "id": rid,
        "name": [{"text": "Demo clinician"}],
    },
}
_REFERENCE = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})$")
_ORDER = {"Practitioner": 0, "Medication": 1, "Patient": 2}
_BENIGN = ("information", "warning")


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def patient_resources(patient: DemoPatient) -> list[Resource]:
    """The scenario's prefetch resources (no draft orders), plus stubs for what they cite."""
    held: dict[tuple[str, str], Resource] = {}
    for resource in prefetch_resources(patient.request.get("prefetch")):
        key = (str(resource.get("resourceType")), str(resource.get("id")))
        if key[0] in TYPES and isinstance(resource.get("id"), str):
            held.setdefault(key, resource)
    for resource in list(held.values()):
        for reference in _references(resource):
            match = _REFERENCE.match(reference)
            if match and match.group(1) in _STUBS and match.groups() not in held:
                held[(match.group(1), match.group(2))] = _STUBS[match.group(1)](match.group(2))
    return sorted(held.values(), key=lambda r: _ORDER.get(str(r["resourceType"]), 3))


def transaction_bundle(resources: list[Resource], base: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }


def transaction_bundles(data: DemoData, base: str) -> list[tuple[DemoPatient, dict[str, Any]]]:
    """One bundle per demo patient (a patient in two scenarios is loaded once)."""
    seen: set[str] = set()
    bundles = []
    for patient in data.patients:
        if patient.patient_id in seen:
            continue
        seen.add(patient.patient_id)
        bundles.append((patient, transaction_bundle(patient_resources(patient), base)))
    return bundles


def _label(bundle: dict[str, Any], index: int) -> str:
    entries = bundle["entry"]
    if 0 <= index < len(entries):
        return str(entries[index]["request"]["url"])
    return f"entry {index}"


def _issue_text(issue: Any) -> str:
    if not isinstance(issue, dict):
        return "(malformed issue)"
    details = issue.get("details")
    text = issue.get("diagnostics") or (details.get("text") if isinstance(details, dict) else "")
    where = issue.get("expression") or issue.get("location")
    suffix = f" [at {', '.join(map(str, where))}]" if isinstance(where, list) and where else ""
    return f"{issue.get('severity', 'error')} {issue.get('code', '')}: {text or '-'}{suffix}"


def _issue_target(issue: Any, bundle: dict[str, Any]) -> str:
    """Which resource of the bundle an issue is about, from its location or its text."""
    if isinstance(issue, dict):
        where = [*(issue.get("expression") or []), *(issue.get("location") or [])]
        text = " ".join(map(str, where)) + " " + str(issue.get("diagnostics") or "")
        match = _ENTRY_INDEX.search(text)
        if match:
            return _label(bundle, int(match.group(1)))
        for entry in bundle["entry"]:
            url = str(entry["request"]["url"])
            if url in text:
                return url
    return "the bundle"


def _errors(issues: Any) -> list[Any]:
    if not isinstance(issues, list):
        return []
    return [i for i in issues if not (isinstance(i, dict) and i.get("severity") in _BENIGN)]


def _problems(status: int, body: Any, bundle: dict[str, Any]) -> list[str]:
    """Per-resource rejections from a transaction response (or the error it came back as)."""
    problems: list[str] = []
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        for issue in _errors(body.get("issue")) or [{"diagnostics": f"HTTP {status}"}]:
            problems.append(f"{_issue_target(issue, bundle)}: {_issue_text(issue)}")
        return problems
    if status >= 400:
        return [f"the bundle: HTTP {status} without an OperationOutcome"]
    entries = body.get("entry") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        return [f"the bundle: HTTP {status} but no transaction-response Bundle came back"]
    for position, entry in enumerate(entries):
        response = entry.get("response") if isinstance(entry, dict) else None
        code = str(response.get("status", "")) if isinstance(response, dict) else ""
        if code[:1] == "2":
            continue
        outcome = response.get("outcome") if isinstance(response, dict) else None
        issues = _errors(outcome.get("issue")) if isinstance(outcome, dict) else []
        label = _label(bundle, position)
        if not issues:
            problems.append(f"{label}: status {code or 'missing'}")
        problems += [f"{label}: {_issue_text(issue)}" for issue in issues]
    return problems


def load_fixtures(
    fhir_url: str,
    *,
    data: DemoData | None = None,
    timeout_s: float = 60.0,
    session: requests.Session | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """POST one transaction per demo patient to ``fhir_url``; 0 when every resource is stored."""
    out = out or sys.stdout
    err = err or sys.stderr
    base = fhir_url.rstrip("/")
    data = data if data is not None else DemoData.load()
    http = session or requests.Session()
    failed = 0
    stored = 0
    for patient, bundle in transaction_bundles(data, base):
        count = len(bundle["entry"])
        try:
            response = http.post(
                base,
                json=bundle,
                headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON},
                timeout=timeout_s,
            )
        except requests.RequestException as exc:
            print(f"error: cannot reach the FHIR server at {base}: {exc}", file=err)
            return 2
        try:
            body = response.json()
        except ValueError:
            body = None
        problems = _problems(response.status_code, body, bundle)
        if problems:
            failed += 1
            print(
                f"REJECTED {patient.patient_id} ({count} resources, HTTP {response.status_code}):",
                file=err,
            )
            for problem in problems:
                print(f"  - {problem}", file=err)
        else:
            stored += count
            print(f"loaded   {patient.patient_id} ({count} resources): {patient.title}", file=out)
    total = len({p.patient_id for p in data.patients})
    print(
        f"{total - failed} of {total} demo patients loaded into {base} ({stored} resources)",
        file=out,
    )
    return 1 if failed else 0
