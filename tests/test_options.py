"""Client configuration options on a hook call: each topic on and off, ``max-cards``,
``info-cards``, bad values as 400s; what an option removes is not audited as shown, not counted
as snoozed, and the trace says which option removed it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cds_service.app._api_models import Discovery
from cds_service.app._api_models import HookRequest as ApiHookRequest
from cds_service.engine import trace
from cds_service.metrics import REGISTRY
from cds_service.pipeline import CdsService
from cds_service.profile import load_site_content
from cds_service.protocol import SERVICES
from cds_service.scenarios import Scenario, load_scenario
from cds_service.store import Store
from cds_service.store._schema import card_audit

from .settings_support import make_settings
from .support import (
    CARDS,
    REPO,
    RefusingFhirClient,
    hook_request,
    magnesium,
    make_client,
    medication_request,
    shipped_content,
)

SCENARIOS = REPO / "fixtures" / "scenarios"
# order-sign: antacid-tacrolimus (warning), antacid-mycophenolate (warning), spacing (info)
ANTACIDS = "antacid-sign-on-prograf-and-mycophenolate.json"
# For each topic, a scenario that shows its card, and every card that scenario shows.
SHOWN_BY = {
    "antacid-mycophenolate": ANTACIDS,
    "antacid-tacrolimus": ANTACIDS,
    "hypermagnesemia": "hypermagnesemia-antacid-sign-mmol.json",
    "hypomagnesemia": "bmt-cyclosporine-refractory-hypokalemia.json",
    "mg-declining": "heart-tx-cyclosporine-mg-declining-mixed-units.json",
    "mg-digoxin": "digoxin-ckd4-mg-0-75-mmol.json",
    "mg-monitoring-gap": "cyclosporine-stale-mg-0-68-35-days.json",
    "mg-refractory-hypocalcemia": "bypass-low-ionized-ca-low-mg.json",
    "mg-refractory-hypokalemia": "bmt-cyclosporine-refractory-hypokalemia.json",
    "mg-supplement-spacing": ANTACIDS,
    "mg-wasting-comedication": "carboplatin-sign-mg-0-6-mmol.json",
}
SERVICE_OF = {service.hook: service.id for service in SERVICES.values()}


def _scenario(name: str) -> Scenario:
    return load_scenario(SCENARIOS / name, shift=False)


def _service(scenario: Scenario, store: Store | None = None, cards: Path = CARDS) -> CdsService:
    return CdsService(
        settings=make_settings(patient_hash_key="k"),
        content=shipped_content() if cards == CARDS else load_site_content(cards),
        store=store,
        fhir_client=RefusingFhirClient(),
        clock=lambda: scenario.now,
    )


def _configured(
    scenario: Scenario, configuration: dict[str, Any] | None, key: str = "cds-service.configuration"
) -> dict[str, Any]:
    request = dict(scenario.request)
    if configuration is not None:
        request["extension"] = {key: configuration}
    return request


def _call(
    scenario: Scenario,
    configuration: dict[str, Any] | None = None,
    *,
    service: CdsService | None = None,
    key: str = "cds-service.configuration",
) -> Any:
    client = make_client(service or _service(scenario))
    service_id = SERVICE_OF[scenario.request["hook"]]
    return client.post(
        f"/cds-services/{service_id}", json=_configured(scenario, configuration, key)
    )


def _cards(
    scenario: Scenario, configuration: dict[str, Any] | None = None, **kwargs: Any
) -> list[tuple[str, str]]:
    response = _call(scenario, configuration, **kwargs)
    assert response.status_code == 200, response.text
    return [
        (card["source"]["topic"]["code"], card["indicator"]) for card in response.json()["cards"]
    ]


def _topics(cards: list[tuple[str, str]]) -> list[str]:
    return [topic for topic, _indicator in cards]


# -- each topic: on, off, invalid ----------------------------------------------------------------


@pytest.mark.parametrize("topic", sorted(SHOWN_BY))
def test_a_topic_switched_on_is_shown_as_by_default(topic: str) -> None:
    scenario = _scenario(SHOWN_BY[topic])
    default = _cards(scenario)
    assert topic in _topics(default)
    assert _cards(scenario, {topic: True}) == default


@pytest.mark.parametrize("topic", sorted(SHOWN_BY))
def test_a_topic_switched_off_leaves_out_its_cards_only(topic: str) -> None:
    scenario = _scenario(SHOWN_BY[topic])
    default = _cards(scenario)
    assert _cards(scenario, {topic: False}) == [card for card in default if card[0] != topic]


@pytest.mark.parametrize("topic", sorted(SHOWN_BY))
def test_a_topic_switch_that_is_not_a_boolean_is_a_400(topic: str) -> None:
    response = _call(_scenario(SHOWN_BY[topic]), {topic: "false"})
    assert response.status_code == 400
    where = f"extension.cds-service.configuration.{topic}"
    assert response.json() == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "invalid",
                "diagnostics": f"{where} must be true or false (a JSON boolean), not a string",
                "expression": [where],
            }
        ],
    }


def test_every_offered_topic_has_a_scenario_here() -> None:
    offered = {
        option["code"]
        for service in make_client().get("/cds-services").json()["services"]
        for option in service["extension"]["cds-service.configuration-options"]
    }
    assert offered - {"max-cards", "info-cards"} == set(SHOWN_BY)


# -- max-cards -----------------------------------------------------------------------------------


def test_max_cards_keeps_the_most_urgent_in_the_engines_order() -> None:
    scenario = _scenario(ANTACIDS)
    everything = [
        ("antacid-tacrolimus", "warning"),
        ("antacid-mycophenolate", "warning"),
        ("mg-supplement-spacing", "info"),
    ]
    assert _cards(scenario) == everything
    assert _cards(scenario, {"max-cards": 1}) == everything[:1]
    assert _cards(scenario, {"max-cards": 2}) == everything[:2]
    assert _cards(scenario, {"max-cards": 3}) == everything


def test_max_cards_keeps_a_critical_card_over_a_warning() -> None:
    # furosemide drafted for a patient with a critical magnesium
    furosemide = medication_request(
        "200801", "Furosemide 20 MG Oral Tablet", req_id="draft-1", status="draft"
    )
    request = hook_request("order-sign", observations=[magnesium(0.9)], drafts=[furosemide])
    client = make_client()

    def cards(configuration: dict[str, Any]) -> list[tuple[str, str]]:
        request["extension"] = {"cds-service.configuration": configuration}
        response = client.post("/cds-services/mg-order-sign", json=request)
        return [(c["source"]["topic"]["code"], c["indicator"]) for c in response.json()["cards"]]

    both = [("hypomagnesemia", "critical"), ("mg-wasting-comedication", "warning")]
    assert cards({}) == both
    assert cards({"max-cards": 1}) == both[:1]
    assert cards({"hypomagnesemia": False, "max-cards": 1}) == both[1:]


def test_max_cards_above_the_contents_cap_leaves_the_cap(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    shutil.copytree(CARDS, cards)
    settings = cards / "settings.yaml"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace("\nmax_cards: 5\n", "\nmax_cards: 2\n"),
        encoding="utf-8",
    )
    scenario = _scenario(ANTACIDS)
    capped = _service(scenario, cards=cards)
    assert _topics(_cards(scenario, {"max-cards": 10}, service=capped)) == [
        "antacid-tacrolimus",
        "antacid-mycophenolate",
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (0, "must be 1 or more, not 0"),
        ("1", "must be a whole number (a JSON integer), not a string"),
        (1.5, "must be a whole number (a JSON integer), not a decimal number"),
    ],
)
def test_a_bad_max_cards_is_a_400(value: Any, problem: str) -> None:
    response = _call(_scenario(ANTACIDS), {"max-cards": value})
    assert response.status_code == 400
    (issue,) = response.json()["issue"]
    assert issue["diagnostics"] == f"extension.cds-service.configuration.max-cards {problem}"
    assert issue["expression"] == ["extension.cds-service.configuration.max-cards"]


# -- info-cards ----------------------------------------------------------------------------------


def test_info_cards_false_leaves_out_info_cards_and_true_keeps_them() -> None:
    scenario = _scenario(ANTACIDS)
    assert _topics(_cards(scenario, {"info-cards": True})) == [
        "antacid-tacrolimus",
        "antacid-mycophenolate",
        "mg-supplement-spacing",
    ]
    assert _cards(scenario, {"info-cards": False}) == [
        ("antacid-tacrolimus", "warning"),
        ("antacid-mycophenolate", "warning"),
    ]


def test_a_bad_info_cards_is_a_400() -> None:
    response = _call(_scenario(ANTACIDS), {"info-cards": 0})
    assert response.status_code == 400
    assert response.json()["issue"][0]["diagnostics"] == (
        "extension.cds-service.configuration.info-cards must be true or false "
        "(a JSON boolean), not an integer"
    )


# -- together, the CRD key, nothing sent ---------------------------------------------------------


def test_options_combine() -> None:
    scenario = _scenario(ANTACIDS)
    configuration = {"antacid-tacrolimus": False, "info-cards": False, "max-cards": 1}
    assert _cards(scenario, configuration) == [("antacid-mycophenolate", "warning")]


def test_the_crd_configuration_key_is_honoured() -> None:
    scenario = _scenario(ANTACIDS)
    cards = _cards(scenario, {"max-cards": 1}, key="davinci-crd.configuration")
    assert cards == [("antacid-tacrolimus", "warning")]
    response = _call(scenario, {"max-cards": 0}, key="davinci-crd.configuration")
    assert response.json()["issue"][0]["expression"] == [
        "extension.davinci-crd.configuration.max-cards"
    ]


def test_unknown_options_and_other_extensions_change_nothing() -> None:
    scenario = _scenario(ANTACIDS)
    default = _cards(scenario)
    assert _cards(scenario, {"no-such-option": "x", "mg-declining": False}) == default
    request = dict(scenario.request)
    request["extension"] = {"com.example.other": {"max-cards": 1}}
    response = make_client(_service(scenario)).post("/cds-services/mg-order-sign", json=request)
    assert [c["source"]["topic"]["code"] for c in response.json()["cards"]] == _topics(default)


def test_a_bad_option_is_refused_before_any_fhir_fetch() -> None:
    request = hook_request()
    del request["prefetch"]
    request["fhirServer"] = "https://fhir.example.org/r4"
    request["extension"] = {"cds-service.configuration": {"max-cards": 0}}
    service = _service(_scenario(ANTACIDS))
    response = make_client(service).post("/cds-services/mg-patient-view", json=request)
    assert response.status_code == 400
    assert service.fhir_client.calls == []  # type: ignore[attr-defined]


# -- the audit, the snooze count, the trace ------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'audit.sqlite3'}") as opened:
        yield opened


def _audited(store: Store) -> list[tuple[str, bool]]:
    store.flush()
    with store._database.read() as connection:
        rows = connection.execute(
            select(card_audit.c.topic, card_audit.c.silent).order_by(card_audit.c.topic)
        )
        return [(row.topic, row.silent) for row in rows]


def _snoozed(topic: str) -> float:
    return REGISTRY.get_sample_value("cds_cards_snoozed_total", {"topic": topic}) or 0.0


def test_removed_cards_are_not_audited_nor_counted_as_snoozed(store: Store) -> None:
    scenario = _scenario(ANTACIDS)
    before = {topic: _snoozed(topic) for topic in SHOWN_BY}
    configuration = {"antacid-tacrolimus": False, "max-cards": 1}
    assert _topics(_cards(scenario, configuration, service=_service(scenario, store))) == [
        "antacid-mycophenolate"
    ]
    assert _audited(store) == [("antacid-mycophenolate", False)]
    assert {topic: _snoozed(topic) for topic in SHOWN_BY} == before
    report = store.report()["topics"]
    assert report["antacid-mycophenolate"]["shown"] == 1
    assert "antacid-tacrolimus" not in report and "mg-supplement-spacing" not in report


def test_a_silent_topic_is_audited_whatever_the_configuration(tmp_path: Path, store: Store) -> None:
    cards = tmp_path / "cards"
    shutil.copytree(CARDS, cards)
    path = cards / "topics" / "antacid-tacrolimus.yaml"
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n") + "\nmode: silent\n")
    scenario = _scenario(ANTACIDS)
    service = _service(scenario, store, cards)
    # not offered while silent, so ignored; and a silent card takes no place under max-cards
    configuration = {"antacid-tacrolimus": False, "max-cards": 1}
    assert _topics(_cards(scenario, configuration, service=service)) == ["antacid-mycophenolate"]
    assert _audited(store) == [("antacid-mycophenolate", False), ("antacid-tacrolimus", True)]


def test_the_trace_says_which_option_removed_what() -> None:
    scenario = _scenario(ANTACIDS)
    service = _service(scenario)
    request = _configured(scenario, {"antacid-tacrolimus": False, "info-cards": False})
    result = service.hook("mg-order-sign", request)
    assert trace(result.evaluation)["withheld"] == [
        {"topic": "antacid-tacrolimus", "reason": "configuration: antacid-tacrolimus is false"},
        {"topic": "mg-supplement-spacing", "reason": "configuration: info-cards is false"},
    ]
    result = service.hook("mg-order-sign", _configured(scenario, {"max-cards": 1}))
    assert trace(result.evaluation)["withheld"] == [
        {"topic": "antacid-mycophenolate", "reason": "configuration: max-cards is 1"},
        {"topic": "mg-supplement-spacing", "reason": "configuration: max-cards is 1"},
    ]


def test_evaluate_trace_shows_the_configuration(tmp_path: Path) -> None:
    scenario = _scenario(ANTACIDS)
    path = tmp_path / "request.json"
    path.write_text(json.dumps(_configured(scenario, {"max-cards": 2, "info-cards": True})))
    now = scenario.now.isoformat()
    result = subprocess.run(
        [sys.executable, "-m", "cds_service.cli", "evaluate", str(path), "--trace", "--now", now],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert [card["source"]["topic"]["code"] for card in output["cards"]] == [
        "antacid-tacrolimus",
        "antacid-mycophenolate",
    ]
    assert output["trace"]["configuration"] == {"max-cards": 2}
    assert output["trace"]["withheld"] == [
        {"topic": "mg-supplement-spacing", "reason": "configuration: max-cards is 2"}
    ]


# -- the API description -------------------------------------------------------------------------


def test_the_api_description_documents_the_options() -> None:
    client = make_client()
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    extension = schemas["HookRequest"]["properties"]["extension"]
    assert {"$ref": "#/components/schemas/RequestExtension"} in extension["anyOf"]
    assert set(schemas["RequestExtension"]["properties"]) == {
        "cds-service.configuration",
        "davinci-crd.configuration",
    }
    options = schemas["ServiceExtension"]["properties"]["cds-service.configuration-options"]
    assert options["items"] == {"$ref": "#/components/schemas/ConfigurationOption"}
    assert schemas["ConfigurationOption"]["properties"]["type"]["enum"] == ["boolean", "integer"]
    # what the service answers and accepts fits the description
    Discovery.model_validate(client.get("/cds-services").json())
    request = _configured(_scenario(ANTACIDS), {"max-cards": 2, "info-cards": False})
    ApiHookRequest.model_validate(request)
