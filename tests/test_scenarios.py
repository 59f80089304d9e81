"""Golden end-to-end tests: every scenario in ``fixtures/scenarios/`` through the whole service.

Each scenario is a realistic patient and one CDS Hooks call, with the cards that
``clinical-rules.md`` says it must produce (derived by hand, never by running the engine). The
service is built the way the app builds it, with a FHIR client that fails the test if the service
tries to reach a FHIR server (every prefetch key is filled in, so it never should).

When the engine disagrees with the spec for a scenario, the expectation stays as the spec says
and the scenario is listed in ``SPEC_DISCREPANCIES`` (strict xfail) for the rule owner to fix.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from cds_service.content import Content, load_content
from cds_service.pipeline import CdsService
from cds_service.scenarios import Scenario, load_scenario

from .cardcheck import check_card, check_response, topic_of
from .settings_support import make_settings

REPO = Path(__file__).resolve().parent.parent
CARDS = REPO / "cards"
FIXTURES = REPO / "fixtures"
SCENARIOS_DIR = FIXTURES / "scenarios"
SCENARIO_FILES = sorted(SCENARIOS_DIR.glob("*.json"))

SERVICE_FOR_HOOK = {
    "patient-view": "mg-patient-view",
    "order-select": "mg-order-select",
    "order-sign": "mg-order-sign",
}

# clinical-rules.md §2: every topic and the hooks it is shown on.
TOPIC_HOOKS: dict[str, tuple[str, ...]] = {
    "hypomagnesemia": ("patient-view", "order-select", "order-sign"),
    "mg-digoxin": ("patient-view", "order-select"),
    "mg-refractory-hypokalemia": ("patient-view", "order-select", "order-sign"),
    "mg-refractory-hypocalcemia": ("patient-view", "order-select", "order-sign"),
    "antacid-tacrolimus": ("order-select", "order-sign", "patient-view"),
    "antacid-mycophenolate": ("order-select", "order-sign", "patient-view"),
    "mg-supplement-spacing": ("order-select", "order-sign"),
    "mg-monitoring-gap": ("patient-view", "order-select"),
    "mg-wasting-comedication": ("order-select", "order-sign"),
    "mg-declining": ("patient-view",),
}

# Scenarios where the engine does not do what the spec requires: scenario -> what differs.
SPEC_DISCREPANCIES: dict[str, str] = {}

# Suggested order codes the spec requires (clinical-rules.md §2-§3):
# scenario -> topic -> (codes that must be suggested, codes that must not be).
SUGGESTED_CODES: dict[str, dict[str, tuple[frozenset[str], frozenset[str]]]] = {
    # "If no current Mg: suggest ordering one" (LOINC 19123-9 from the formulary).
    "thiazide-low-k-no-current-mg": {
        "mg-refractory-hypokalemia": (frozenset({"19123-9"}), frozenset()),
    },
    # "Suggestion: a tacrolimus trough ServiceRequest" (LOINC 11253-2).
    "antacid-select-on-tacrolimus": {
        "antacid-tacrolimus": (frozenset({"11253-2"}), frozenset()),
    },
    # "Suggestion: a serum Mg ServiceRequest (LOINC 19123-9)".
    "new-tacrolimus-select-no-mg-ever": {
        "mg-monitoring-gap": (frozenset({"19123-9"}), frozenset()),
    },
    # Warning tier: a recheck and the oral Mg of the site formulary (RxNorm 198741).
    "ppi-warning-mg-mmol": {
        "hypomagnesemia": (frozenset({"19123-9", "198741"}), frozenset()),
    },
    # Critical tier: a recheck; the IV Mg entry has no code, so it is left out, never invented,
    # and the oral product is not the critical tier's suggestion.
    "ckd4-critical-mg-mgdl": {
        "hypomagnesemia": (frozenset({"19123-9"}), frozenset({"198741"})),
    },
}


class ForbiddenFhirClient:
    """Fails the test if the service tries to fetch anything: the prefetch is complete."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def get_json(self, url: str, *, bearer: str | None, timeout_s: float) -> Any:
        self.calls.append(url)
        raise AssertionError(f"the service fetched {url} although every prefetch key was given")


@functools.cache
def _content() -> Content:
    return load_content(CARDS)


def _service(scenario: Scenario, client: ForbiddenFhirClient) -> CdsService:
    return CdsService(
        settings=make_settings(),
        content=_content(),
        store=None,
        fhir_client=client,
        clock=lambda: scenario.now,
    )


def _evaluate(scenario: Scenario) -> dict[str, Any]:
    client = ForbiddenFhirClient()
    service = _service(scenario, client)
    result = service.hook(SERVICE_FOR_HOOK[scenario.request["hook"]], scenario.request)
    assert client.calls == [], f"the service reached the FHIR server: {client.calls}"
    body: dict[str, Any] = orjson.loads(orjson.dumps(result.response))  # what goes on the wire
    return body


def _scenario_params() -> list[Any]:
    params = []
    for path in SCENARIO_FILES:
        marks = []
        if path.stem in SPEC_DISCREPANCIES:
            marks.append(pytest.mark.xfail(strict=True, reason=SPEC_DISCREPANCIES[path.stem]))
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


def _suggested_codes(card: Mapping[str, Any]) -> set[str]:
    codes: set[str] = set()
    for suggestion in card.get("suggestions", []):
        for action in suggestion["actions"]:
            resource = action.get("resource", {})
            concept = resource.get("code") or resource.get("medicationCodeableConcept") or {}
            codes |= {coding["code"] for coding in concept.get("coding", [])}
    return codes


# -- the golden tests ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", _scenario_params())
def test_scenario_gives_the_cards_the_spec_requires(path: Path) -> None:
    scenario = load_scenario(path, shift=False)
    body = _evaluate(scenario)

    check_response(body, max_cards=_content().settings.max_cards)
    cards = body["cards"]
    for card in cards:
        check_card(card)

    shown = {topic_of(card): card["indicator"] for card in cards}
    expected = {item.topic: item.indicator for item in scenario.expected}
    summaries = "\n".join(f"  {topic_of(c)} [{c['indicator']}]: {c['summary']}" for c in cards)
    assert shown == expected, (
        f"{scenario.name}: expected {expected}, got {shown}\n{summaries or '  (no cards)'}"
    )
    by_topic = {topic_of(card): card for card in cards}
    for item in scenario.expected:
        card = by_topic[item.topic]
        for text in item.summary_contains:
            assert text in card["summary"], (
                f"{item.topic}: summary lacks {text!r}: {card['summary']!r}"
            )
        for text in item.detail_contains:
            assert text in card["detail"], f"{item.topic}: detail lacks {text!r}:\n{card['detail']}"
    for topic, (required, forbidden) in SUGGESTED_CODES.get(scenario.name, {}).items():
        codes = _suggested_codes(by_topic[topic])
        assert required <= codes, f"{topic}: suggestions {codes} lack {required - codes}"
        assert not (forbidden & codes), f"{topic}: suggestions include {forbidden & codes}"


# Scenario -> reason, for demo scenarios whose topics/indicators differ from the spec even shifted.
SHIFTED_DISCREPANCIES: dict[str, str] = {}


def _demo_params() -> list[Any]:
    params = []
    for path in SCENARIO_FILES:
        if not load_scenario(path, shift=False).demo:
            continue
        marks = []
        if path.stem in SHIFTED_DISCREPANCIES:
            marks.append(pytest.mark.xfail(strict=True, reason=SHIFTED_DISCREPANCIES[path.stem]))
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


@pytest.mark.parametrize("path", _demo_params())
def test_demo_scenario_reads_the_same_when_shifted_to_another_day(path: Path) -> None:
    """The demo loads scenarios shifted to today: the same topics and indicators must fire."""
    scenario = load_scenario(path, now=datetime(2027, 3, 9, 9, 30, tzinfo=UTC), shift=True)
    assert scenario.now.date().isoformat() == "2027-03-09"
    body = _evaluate(scenario)
    shown = {topic_of(card): card["indicator"] for card in body["cards"]}
    assert shown == {item.topic: item.indicator for item in scenario.expected}


# -- the scenario set ----------------------------------------------------------------------------


def _all() -> list[Scenario]:
    return [load_scenario(path, shift=False) for path in SCENARIO_FILES]


def test_there_are_enough_scenarios_covering_every_topic() -> None:
    scenarios = _all()
    assert len(scenarios) >= 25
    covered = {item.topic for s in scenarios for item in s.expected}
    assert covered == set(TOPIC_HOOKS) == set(_content().topics)
    assert sum(1 for s in scenarios if not s.expected) >= 5, "too few no-card scenarios"


def test_demo_patients_show_every_topic_on_every_hook_the_contract_names() -> None:
    seen = {(item.topic, s.request["hook"]) for s in _all() if s.demo for item in s.expected}
    missing = sorted(
        (topic, hook)
        for topic, hooks in TOPIC_HOOKS.items()
        for hook in hooks
        if (topic, hook) not in seen
    )
    assert not missing, f"no demo scenario shows {missing}"


def test_each_scenario_is_one_patient_with_a_complete_request() -> None:
    patient_ids: list[str] = []
    instances: list[str] = []
    for s in _all():
        request = s.request
        context = request["context"]
        assert s.now == datetime(2026, 11, 20, 12, 0, tzinfo=UTC), s.name
        assert request["fhirServer"] == "http://localhost:8081/fhir", s.name
        assert context["userId"] == "Practitioner/example", s.name
        assert str(uuid.UUID(request["hookInstance"])) == request["hookInstance"], s.name
        if request["hook"] != "patient-view":
            assert isinstance(context["draftOrders"], dict), s.name
        if request["hook"] == "order-select":
            assert context["selections"], s.name
        prefetch = request["prefetch"]
        assert set(prefetch) == {
            "patient",
            "observations",
            "medicationRequests",
            "medicationStatements",
        }, s.name
        patient = prefetch["patient"]
        assert patient["id"] == context["patientId"], s.name
        assert patient["name"][0]["family"] and patient["name"][0]["given"], s.name
        assert patient["birthDate"] and patient["gender"] in ("female", "male"), s.name
        for key in ("observations", "medicationRequests", "medicationStatements"):
            bundle = prefetch[key]
            assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset", s.name
            matches = [e for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]
            assert bundle["total"] == len(matches), s.name
            for entry in bundle.get("entry", []):
                subject = entry["resource"].get("subject")
                if subject is not None:
                    assert subject["reference"] == f"Patient/{patient['id']}", s.name
        assert s.description and s.title, s.name
        patient_ids.append(patient["id"])
        instances.append(request["hookInstance"])
    assert len(set(patient_ids)) == len(patient_ids), "two scenarios share a patient"
    assert len(set(instances)) == len(instances), "two scenarios share a hookInstance"


def _validate(resource: Mapping[str, Any]) -> None:
    kind = resource["resourceType"]
    module = importlib.import_module(f"fhir.resources.R4B.{kind.lower()}")
    getattr(module, kind).model_validate(dict(resource))


def test_prefetch_and_ehr_drafts_are_valid_fhir_r4() -> None:
    """The charts are valid R4; only the sandbox's drafts keep its deliberate quirks."""
    for s in _all():
        prefetch = s.request["prefetch"]
        _validate(prefetch["patient"])
        for key in ("observations", "medicationRequests", "medicationStatements"):
            _validate(prefetch[key])
        drafts = s.request["context"].get("draftOrders")
        if drafts is not None and "type" in drafts:  # EHR-shaped, not the sandbox's
            _validate(drafts)


# -- the generator -------------------------------------------------------------------------------


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_scenarios", FIXTURES / "generate_scenarios.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_generator_rewrites_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    generator = _generator()
    written = generator.write_scenarios(tmp_path)
    assert sorted(p.name for p in written) == [p.name for p in SCENARIO_FILES]
    for path in SCENARIO_FILES:
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), (
            f"{path.name} differs from the generator's output: run "
            "python fixtures/generate_scenarios.py"
        )
    again = tmp_path / "again"
    generator.write_scenarios(again)
    for path in SCENARIO_FILES:
        assert (again / path.name).read_bytes() == path.read_bytes()


def test_fixtures_readme_lists_every_scenario() -> None:
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    missing = [path.stem for path in SCENARIO_FILES if f"`{path.stem}`" not in readme]
    assert not missing, f"fixtures/README.md does not list {missing}"


# -- the card checker itself ---------------------------------------------------------------------


def _valid_card() -> dict[str, Any]:
    return {
        "uuid": "2a1c3b0e-7d6f-4c3a-9a55-0c1f5d1e2b3a",
        "summary": "Mg 1.1 mg/dL on 2026-11-19 is critically low: give IV magnesium sulfate",
        "indicator": "critical",
        "detail": "| Result | Value | Date |\n|---|---|---|\n| Magnesium | 1.1 mg/dL | 2026-11-19 |"
        "\n\nSevere hypomagnesemia.",
        "source": {
            "label": "Treatment of hypomagnesemia",
            "url": "https://example.org/source",
            "topic": {
                "system": "urn:cds-service:topic",
                "code": "hypomagnesemia",
                "display": "Low serum magnesium",
            },
        },
        "suggestions": [
            {
                "label": "Order a serum magnesium",
                "uuid": "9b8f7e6d-5c4b-4a3f-8e2d-1c0b9a8f7e6d",
                "actions": [
                    {
                        "type": "create",
                        "description": "Order a serum magnesium",
                        "resource": {
                            "resourceType": "ServiceRequest",
                            "status": "draft",
                            "intent": "proposal",
                            "code": {
                                "coding": [
                                    {
                                        "system": "http://loinc.org",
                                        "code": "19123-9",
                                        "display": "Magnesium [Mass/volume] in Serum or Plasma",
                                    }
                                ]
                            },
                            "subject": {"reference": "Patient/mg-harold-jensen"},
                        },
                    }
                ],
            }
        ],
        "selectionBehavior": "any",
        "overrideReasons": [
            {
                "system": "urn:cds-service:override-reason",
                "code": "will-monitor",
                "display": "Will monitor",
            }
        ],
    }


def _set(path: str, value: Any) -> Any:
    def mutate(card: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = card
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return mutate


_DELETE = object()
_RESOURCE = "suggestions.0.actions.0.resource"


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(_set("uuid", _DELETE), id="no-uuid"),
        pytest.param(_set("uuid", "not-a-uuid"), id="bad-uuid"),
        pytest.param(_set("summary", "x" * 140), id="summary-140"),
        pytest.param(_set("summary", ""), id="summary-empty"),
        pytest.param(_set("indicator", "hard-stop"), id="bad-indicator"),
        pytest.param(_set("detail", None), id="detail-null"),
        pytest.param(_set("source.topic.system", "urn:other"), id="topic-system"),
        pytest.param(_set("source.label", _DELETE), id="no-source-label"),
        pytest.param(_set("links", []), id="empty-list"),
        pytest.param(_set("source.icon", ""), id="empty-string"),
        pytest.param(_set("extension", {}), id="empty-object"),
        pytest.param(_set("selectionBehavior", "at-most-one"), id="selection-behavior"),
        pytest.param(_set("selectionBehavior", _DELETE), id="no-selection-behavior"),
        pytest.param(_set("suggestions.0.uuid", _DELETE), id="suggestion-no-uuid"),
        pytest.param(_set("suggestions.0.label", _DELETE), id="suggestion-no-label"),
        pytest.param(_set(f"{_RESOURCE}.status", "active"), id="resource-not-draft"),
        pytest.param(_set(f"{_RESOURCE}.intent", "order"), id="resource-not-proposal"),
        pytest.param(_set(f"{_RESOURCE}.subject", _DELETE), id="resource-no-subject"),
        pytest.param(_set(f"{_RESOURCE}.authoredOn", "yesterday"), id="resource-invalid-fhir"),
        pytest.param(_set("overrideReasons.0.display", _DELETE), id="override-no-display"),
        pytest.param(_set("summry", "typo"), id="unknown-field"),
    ],
)
def test_card_checker_rejects(mutate: Any) -> None:
    card = _valid_card()
    check_card(card)
    mutate(card)
    with pytest.raises(AssertionError):
        check_card(card)


def test_response_checker_rejects_duplicate_topics_and_wrong_order() -> None:
    first, second = _valid_card(), _valid_card()
    second["uuid"] = "3c2d1e0f-8a7b-4c6d-9e5f-4a3b2c1d0e9f"
    second["suggestions"][0]["uuid"] = "4d3e2f1a-9b8c-4d7e-8f6a-5b4c3d2e1f0a"
    check_response({"cards": [first]})
    with pytest.raises(AssertionError, match="more than one card"):
        check_response({"cards": [first, second]})
    second["source"]["topic"]["code"] = "mg-digoxin"
    second["indicator"] = "warning"
    check_response({"cards": [first, second]})
    with pytest.raises(AssertionError, match="ordered critical"):
        check_response({"cards": [second, first]})
