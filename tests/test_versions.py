"""CDS Hooks 1.0 responses: exactly what 1.0 defines, ``selectionBehavior: at-most-one``, and a
combined suggestion where a card's suggestions go together; the audit keeps the 2.0 card."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from cds_service.pipeline import CdsService
from cds_service.profile import ProfileSet, build_profile
from cds_service.protocol import SERVICES, ServiceError
from cds_service.scenarios import SCENARIOS_DIR, Scenario, all_scenarios, load_scenario
from cds_service.store import Store
from cds_service.trust import VerifiedCaller
from cds_service.versions import AT_MOST_ONE, card_1_0, combined_suggestion, response_for

from .settings_support import make_settings
from .support import RefusingFhirClient, shipped_content

BMT = SCENARIOS_DIR / "bmt-cyclosporine-refractory-hypokalemia.json"
SERVICE_FOR_HOOK = {service.hook: service_id for service_id, service in SERVICES.items()}

# What CDS Hooks 1.0 defines (and ``extension``, which 1.0 reserves for implementations).
CARD_1_0 = {
    "summary",
    "detail",
    "indicator",
    "source",
    "suggestions",
    "selectionBehavior",
    "links",
    "extension",
}
SOURCE_1_0 = {"label", "url", "icon"}
SUGGESTION_1_0 = {"label", "uuid", "actions"}
ACTION_1_0 = {"type", "description", "resource"}
LINK_1_0 = {"label", "url", "type", "appContext"}

LAB = {"resourceType": "ServiceRequest", "status": "draft", "intent": "proposal"}
DRUG = {"resourceType": "MedicationRequest", "status": "draft", "intent": "proposal"}
CARD_2_0: dict[str, Any] = {
    "uuid": "0b9d4f0e-2f6a-4a53-9d36-6f2b0c1f1a01",
    "summary": "Low Mg 0.61 mmol/L on cyclosporine: start oral magnesium",
    "indicator": "warning",
    "detail": "Start oral magnesium; recheck in 1-2 weeks.",
    "source": {
        "label": "KDIGO 2024",
        "url": "https://cds.example.org/cds-services/topics/hypomagnesemia",
        "topic": {"system": "urn:cds-service:topic", "code": "hypomagnesemia", "display": "Low"},
    },
    "overrideReasons": [{"system": "urn:x", "code": "aware", "display": "Already aware"}],
    "suggestions": [
        {
            "label": "Order a serum magnesium",
            "uuid": "5c0c0d8e-65b5-4bd0-8d53-0c6f6d1f2a02",
            "isRecommended": True,
            "actions": [{"type": "create", "description": "Serum Mg", "resource": LAB}],
        },
        {
            "label": "Order magnesium oxide 400 mg at night",
            "uuid": "9a5a2f7e-6c1b-4d2c-9f3e-1b2c3d4e5f03",
            "actions": [
                {"type": "create", "description": "Mg oxide", "resource": DRUG, "resourceId": "x"}
            ],
        },
    ],
    "selectionBehavior": "any",
    "links": [{"label": "Guideline", "url": "https://example.org/g", "type": "absolute"}],
    "extension": {"cds-service.content": {"version": "2.0.0"}},
}
COMBINED_UUID = str(
    uuid.uuid5(
        uuid.UUID("5d0a1c43-6f55-4e2b-9a0e-6b1a8f2f3c11"),
        "5c0c0d8e-65b5-4bd0-8d53-0c6f6d1f2a02+9a5a2f7e-6c1b-4d2c-9f3e-1b2c3d4e5f03",
    )
)


def test_a_card_in_the_1_0_shape_exactly() -> None:
    before = copy.deepcopy(CARD_2_0)
    assert card_1_0(CARD_2_0) == {
        "summary": "Low Mg 0.61 mmol/L on cyclosporine: start oral magnesium",
        "detail": "Start oral magnesium; recheck in 1-2 weeks.",
        "indicator": "warning",
        "source": {
            "label": "KDIGO 2024",
            "url": "https://cds.example.org/cds-services/topics/hypomagnesemia",
        },
        "suggestions": [
            {
                "label": "Both: Order a serum magnesium; Order magnesium oxide 400 mg at night",
                "actions": [
                    {"type": "create", "description": "Serum Mg", "resource": LAB},
                    {"type": "create", "description": "Mg oxide", "resource": DRUG},
                ],
                "uuid": COMBINED_UUID,
            },
            {
                "label": "Order a serum magnesium",
                "uuid": "5c0c0d8e-65b5-4bd0-8d53-0c6f6d1f2a02",
                "actions": [{"type": "create", "description": "Serum Mg", "resource": LAB}],
            },
            {
                "label": "Order magnesium oxide 400 mg at night",
                "uuid": "9a5a2f7e-6c1b-4d2c-9f3e-1b2c3d4e5f03",
                "actions": [{"type": "create", "description": "Mg oxide", "resource": DRUG}],
            },
        ],
        "selectionBehavior": "at-most-one",
        "links": [{"label": "Guideline", "url": "https://example.org/g", "type": "absolute"}],
        "extension": {"cds-service.content": {"version": "2.0.0"}},
    }
    assert before == CARD_2_0  # the rendered card (what the audit records) is left alone


def test_the_1_0_keys_come_in_the_specs_order() -> None:
    assert list(card_1_0(CARD_2_0)) == [
        "summary",
        "detail",
        "indicator",
        "source",
        "suggestions",
        "selectionBehavior",
        "links",
        "extension",
    ]


def test_one_suggestion_is_offered_as_it_is() -> None:
    card = {**CARD_2_0, "suggestions": CARD_2_0["suggestions"][:1]}
    shaped = card_1_0(card)
    assert shaped["suggestions"] == [
        {
            "label": "Order a serum magnesium",
            "uuid": "5c0c0d8e-65b5-4bd0-8d53-0c6f6d1f2a02",
            "actions": [{"type": "create", "description": "Serum Mg", "resource": LAB}],
        }
    ]
    assert shaped["selectionBehavior"] == AT_MOST_ONE


def test_a_card_without_suggestions_has_no_selection_behavior() -> None:
    card = {k: v for k, v in CARD_2_0.items() if k not in ("suggestions", "selectionBehavior")}
    assert "selectionBehavior" not in card_1_0(card)
    assert "suggestions" not in card_1_0(card)


def test_three_suggestions_are_offered_all_together_first() -> None:
    third = {"label": "Order a serum potassium", "uuid": str(uuid.uuid4()), "actions": []}
    combined = combined_suggestion([*CARD_2_0["suggestions"], third])
    assert combined["label"].startswith("All: Order a serum magnesium; ")
    assert len(combined["actions"]) == 2


def test_a_2_0_client_gets_the_cards_as_rendered() -> None:
    assert response_for("2.0", [CARD_2_0]) == {"cards": [CARD_2_0]}
    assert response_for("1.0", [CARD_2_0]) == {"cards": [card_1_0(CARD_2_0)]}


# --- through the service ------------------------------------------------------------------


def _service(version: str, scenario: Scenario, store: Store | None = None) -> CdsService:
    content = shipped_content()
    default = build_profile(content, name=f"cds_hooks={version}", cds_hooks_version=version)
    return CdsService(
        settings=make_settings(),
        profiles=ProfileSet(default),
        store=store,
        fhir_client=RefusingFhirClient(),
        clock=lambda: scenario.now,
    )


def _call(service: CdsService, scenario: Scenario, caller: VerifiedCaller | None = None) -> Any:
    return service.hook(SERVICE_FOR_HOOK[scenario.request["hook"]], scenario.request, caller=caller)


def test_the_1_0_response_of_a_real_call_exactly() -> None:
    scenario = load_scenario(BMT, shift=False)
    result = _call(_service("1.0", scenario), scenario)
    low, hypokalemia = result.evaluation.cards  # the 2.0 cards, as audited
    lab, drug = low["suggestions"]
    body = orjson.loads(orjson.dumps(result.response))  # what goes on the wire
    assert body == {
        "cards": [
            {
                "summary": low["summary"],
                "detail": low["detail"],
                "indicator": "warning",
                "source": {"label": low["source"]["label"], "url": low["source"]["url"]},
                "suggestions": [
                    {
                        "label": (
                            "Both: Order a serum magnesium; Order magnesium oxide 400 mg at night"
                        ),
                        "actions": lab["actions"] + drug["actions"],
                        "uuid": str(
                            uuid.uuid5(
                                uuid.UUID("5d0a1c43-6f55-4e2b-9a0e-6b1a8f2f3c11"),
                                f"{lab['uuid']}+{drug['uuid']}",
                            )
                        ),
                    },
                    {
                        "label": "Order a serum magnesium",
                        "uuid": lab["uuid"],
                        "actions": lab["actions"],
                    },
                    {
                        "label": "Order magnesium oxide 400 mg at night",
                        "uuid": drug["uuid"],
                        "actions": drug["actions"],
                    },
                ],
                "selectionBehavior": "at-most-one",
                "extension": low["extension"],
            },
            {
                "summary": hypokalemia["summary"],
                "detail": hypokalemia["detail"],
                "indicator": "warning",
                "source": {
                    "label": hypokalemia["source"]["label"],
                    "url": hypokalemia["source"]["url"],
                },
                "extension": hypokalemia["extension"],
            },
        ]
    }
    assert [
        a["resource"]["resourceType"] for a in body["cards"][0]["suggestions"][0]["actions"]
    ] == [
        "ServiceRequest",
        "MedicationRequest",
    ]
    assert result.response == result.response  # the same on every read (derived uuids)


def test_a_2_0_profile_answers_the_rendered_cards() -> None:
    scenario = load_scenario(BMT, shift=False)
    result = _call(_service("2.0", scenario), scenario)
    assert result.response == {"cards": list(result.evaluation.cards)}
    assert result.response["cards"][0]["selectionBehavior"] == "any"
    assert "uuid" in result.response["cards"][0]


def _actions(suggestions: list[dict[str, Any]]) -> list[str]:
    return sorted(orjson.dumps(a).decode() for s in suggestions for a in s["actions"])


@pytest.mark.parametrize("scenario", all_scenarios(SCENARIOS_DIR, shift=False), ids=str)
def test_every_scenarios_1_0_cards_hold_only_what_1_0_defines(scenario: Scenario) -> None:
    try:
        result = _call(_service("1.0", scenario), scenario)
    except ServiceError:  # a scenario the service answers with an error has no cards
        return
    for card, rendered in zip(result.response["cards"], result.evaluation.cards, strict=True):
        assert set(card) <= CARD_1_0
        assert set(card["source"]) <= SOURCE_1_0
        assert {link_key for link in card.get("links", ()) for link_key in link} <= LINK_1_0
        for suggestion in card.get("suggestions", ()):
            assert set(suggestion) <= SUGGESTION_1_0
            assert all(set(action) <= ACTION_1_0 for action in suggestion["actions"])
        if "suggestions" in card:
            assert card["selectionBehavior"] == "at-most-one"
            # Taking the first suggestion is taking everything the 2.0 card offers.
            assert _actions(card["suggestions"][:1]) == _actions(rendered["suggestions"])
        assert card["indicator"] in ("info", "warning", "critical")


def test_a_1_0_call_is_audited_with_the_2_0_card(tmp_path: Path) -> None:
    scenario = load_scenario(BMT, shift=False)
    with Store.open(f"sqlite:///{tmp_path / 'cds.sqlite3'}") as store:
        service = _service("1.0", scenario, store)
        caller = VerifiedCaller(
            iss="https://ehr.example.org", sub=None, jti="j", tenant=None, kid="k", alg="ES384"
        )
        result = _call(service, scenario, caller)
        store.flush()
        audited = {row["card"] for row in store.export()}
    assert "uuid" not in result.response["cards"][0]
    assert audited == {card["uuid"] for card in result.evaluation.cards}
