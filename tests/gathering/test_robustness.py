"""Anything JSON can express ends as data or a 412, never an uncaught exception."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.gathering import GatheredData, render_template
from cds_service.protocol import DataUnavailable, HookRequest

from .support import TEMPLATES, run

_RESOURCE_TYPES = st.sampled_from(
    ["Bundle", "OperationOutcome", "Observation", "MedicationRequest", "Medication", "Patient"]
)
_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
)


def _json(children: Any) -> Any:
    keys = st.sampled_from(
        ["resourceType", "entry", "resource", "search", "mode", "link", "relation", "url",
         "issue", "severity", "medicationReference", "reference", "id", "x"]
    )  # fmt: skip
    return st.lists(children, max_size=4) | st.dictionaries(
        keys | st.text(max_size=5), children, max_size=5
    )


_JSON = st.recursive(_SCALARS | _RESOURCE_TYPES, _json, max_leaves=30)
_VALUES = _JSON | st.builds(
    lambda rtype, entries: {"resourceType": rtype, "entry": entries},
    _RESOURCE_TYPES,
    st.lists(st.builds(lambda r: {"resource": r}, _JSON), max_size=3) | _JSON,
)


class _JunkClient:
    """A FHIR server that answers whatever hypothesis drew, or fails."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def get_json(
        self, url: str, *, bearer: str | None, timeout_s: float, policy: Any = None
    ) -> Any:
        return self.answer


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    prefetch=st.dictionaries(st.sampled_from(list(TEMPLATES)), _VALUES, max_size=3),
    drafts=_VALUES,
    answer=_VALUES,
    patient_id=st.text(max_size=8),
    with_server=st.booleans(),
)
def test_any_json_gives_data_or_412(
    prefetch: dict[str, Any], drafts: Any, answer: Any, patient_id: str, with_server: bool
) -> None:
    payload: dict[str, Any] = {
        "hook": "order-sign",
        "hookInstance": "i",
        "context": {"userId": "Practitioner/1", "patientId": patient_id, "draftOrders": drafts},
        "prefetch": prefetch,
    }
    if with_server:
        payload["fhirServer"] = "https://fhir.example.org/r4"
    request = HookRequest.model_validate(payload)
    try:
        data = run(request, _JunkClient(answer), timeout_s=1.0)
    except DataUnavailable as error:
        assert error.missing
        return
    assert isinstance(data, GatheredData)
    assert set(data.resources) == set(TEMPLATES)


@settings(database=None)
@given(
    template=st.text(max_size=40), context=st.dictionaries(st.text(max_size=10), _JSON, max_size=4)
)
def test_render_template_never_raises(template: str, context: dict[str, Any]) -> None:
    rendered = render_template(template, context)
    assert rendered is None or isinstance(rendered, str)


@pytest.mark.parametrize(
    "value",
    [
        {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": []}}]},
        {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": {"a": 1}}}]},
        {
            "resourceType": "Bundle",
            "entry": [
                {"resource": {"resourceType": "OperationOutcome", "issue": [{"severity": []}]}}
            ],
        },
        {"resourceType": "Bundle", "link": [{"relation": "next", "url": "http://[::1"}]},
    ],
)
def test_unhashable_and_malformed_values_do_not_crash(value: Any) -> None:
    request = HookRequest.model_validate(
        {
            "hook": "patient-view",
            "hookInstance": "i",
            "context": {"userId": "Practitioner/1", "patientId": "p"},
            "prefetch": dict.fromkeys(TEMPLATES, value),
        }
    )
    try:
        run(request, _JunkClient(None))
    except DataUnavailable as error:
        assert error.missing
