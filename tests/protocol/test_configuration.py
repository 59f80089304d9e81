"""Configuration options in the protocol: what discovery offers per service, and how a request's
``extension`` is read (values checked, unknown codes ignored, bad values named)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from cds_service.content import Content
from cds_service.profile import load_site_content
from cds_service.protocol import (
    CONFIGURATION_OPTIONS_EXTENSION,
    DEFAULT_CONFIGURATION,
    Configuration,
    ServiceError,
    configuration_options,
    decode_hook_body,
    discovery_document,
    parse_hook_request,
    read_configuration,
)
from cds_service.rules import TOPIC_SPECS

from ..support import CARDS, hook_request, make_client, shipped_content

PATIENT_VIEW_TOPICS = [
    "hypermagnesemia",
    "hypomagnesemia",
    "mg-digoxin",
    "mg-refractory-hypokalemia",
    "mg-refractory-hypocalcemia",
    "antacid-tacrolimus",
    "antacid-mycophenolate",
    "mg-monitoring-gap",
    "mg-declining",
]
ORDER_SIGN_TOPICS = [
    "hypermagnesemia",
    "hypomagnesemia",
    "mg-refractory-hypokalemia",
    "mg-refractory-hypocalcemia",
    "antacid-tacrolimus",
    "antacid-mycophenolate",
    "mg-supplement-spacing",
    "mg-wasting-comedication",
]


def _options(hook: str, content: Content | None = None) -> list[dict[str, Any]]:
    found = configuration_options(content or shipped_content(), TOPIC_SPECS, hook)
    return [option.as_dict() for option in found]


def _edited(tmp_path: Path, topic: str, line: str) -> Content:
    """The shipped content with one line changed or added in a topic file."""
    cards = tmp_path / "cards"
    shutil.copytree(CARDS, cards)
    path = cards / "topics" / f"{topic}.yaml"
    text = path.read_text(encoding="utf-8")
    if line == "enabled: false":
        text = text.replace("enabled: true", line)
    else:
        text = text.rstrip("\n") + f"\n{line}\n"
    path.write_text(text, encoding="utf-8")
    return load_site_content(cards)


# -- discovery ---------------------------------------------------------------------------------


def test_each_service_offers_its_hooks_topics_then_max_cards_and_info_cards() -> None:
    services = make_client().get("/cds-services").json()["services"]
    offered = {
        service["id"]: [o["code"] for o in service["extension"][CONFIGURATION_OPTIONS_EXTENSION]]
        for service in services
    }
    assert offered == {
        "mg-patient-view": [*PATIENT_VIEW_TOPICS, "max-cards", "info-cards"],
        "mg-order-select": [
            "hypermagnesemia",
            "hypomagnesemia",
            "mg-digoxin",
            "mg-refractory-hypokalemia",
            "mg-refractory-hypocalcemia",
            "antacid-tacrolimus",
            "antacid-mycophenolate",
            "mg-supplement-spacing",
            "mg-wasting-comedication",
            "mg-monitoring-gap",
            "max-cards",
            "info-cards",
        ],
        "mg-order-sign": [*ORDER_SIGN_TOPICS, "max-cards", "info-cards"],
    }


def test_an_option_is_code_type_name_description_and_default() -> None:
    options = {option["code"]: option for option in _options("patient-view")}
    assert options["hypomagnesemia"] == {
        "code": "hypomagnesemia",
        "type": "boolean",
        "name": "Low serum magnesium",
        "description": "false leaves out the cards of this topic (hypomagnesemia); its page, "
        "listed in cds-service.topics, says when it fires.",
        "default": True,
    }
    assert options["max-cards"] == {
        "code": "max-cards",
        "type": "integer",
        "name": "Maximum number of cards",
        "description": "At most this many cards per call (1 or more), the most urgent kept: "
        "critical, then warning, then info. The content's own cap of 5 still applies.",
        "default": 5,
    }
    assert options["info-cards"] == {
        "code": "info-cards",
        "type": "boolean",
        "name": "Information cards",
        "description": "false leaves out every card whose indicator is info.",
        "default": True,
    }


def test_max_cards_defaults_to_the_contents_card_cap(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    shutil.copytree(CARDS, cards)
    settings = cards / "settings.yaml"
    text = settings.read_text(encoding="utf-8")
    assert "\nmax_cards: 5\n" in text
    settings.write_text(text.replace("\nmax_cards: 5\n", "\nmax_cards: 3\n"), encoding="utf-8")
    (max_cards,) = [
        o for o in _options("order-sign", load_site_content(cards)) if o["code"] == "max-cards"
    ]
    assert max_cards["default"] == 3
    assert "The content's own cap of 3 still applies." in max_cards["description"]


@pytest.mark.parametrize("line", ["enabled: false", "mode: silent"])
def test_a_disabled_or_silent_topic_is_not_offered(tmp_path: Path, line: str) -> None:
    content = _edited(tmp_path, "mg-declining", line)
    codes = [option["code"] for option in _options("patient-view", content)]
    assert codes == [*PATIENT_VIEW_TOPICS[:-1], "max-cards", "info-cards"]


def test_discovery_builds_the_options_from_the_content() -> None:
    document = discovery_document(shipped_content(), TOPIC_SPECS)
    for service in document["services"]:
        assert service["extension"][CONFIGURATION_OPTIONS_EXTENSION] == _options(service["hook"])
    # the other members are shared by every service, as before
    assert {key for s in document["services"] for key in s["extension"]} == {
        "cds-service.version",
        "cds-service.content",
        "cds-service.topics",
        CONFIGURATION_OPTIONS_EXTENSION,
    }


# -- the request -------------------------------------------------------------------------------

SIGN = configuration_options(shipped_content(), TOPIC_SPECS, "order-sign")


def _read(extension: Any) -> Configuration:
    return read_configuration(extension, SIGN)


def _outcome(extension: Any) -> list[dict[str, Any]]:
    with pytest.raises(ServiceError) as caught:
        _read(extension)
    assert caught.value.status == 400
    issues: list[dict[str, Any]] = caught.value.outcome()["issue"]
    return issues


@pytest.mark.parametrize(
    "extension",
    [
        None,
        {},
        [],
        "configuration",
        {"com.example.other": {"max-cards": "x"}},
        {"cds-service.configuration": {}},
    ],
    ids=["absent", "empty", "an-array", "a-string", "another-extension", "no-values"],
)
def test_nothing_sent_is_the_default(extension: Any) -> None:
    assert _read(extension) is DEFAULT_CONFIGURATION
    assert Configuration(frozenset(), None, True) == DEFAULT_CONFIGURATION
    assert DEFAULT_CONFIGURATION.is_default


def test_values_are_read() -> None:
    configuration = _read(
        {
            "cds-service.configuration": {
                "antacid-tacrolimus": False,
                "hypomagnesemia": True,
                "max-cards": 2,
                "info-cards": False,
            }
        }
    )
    assert configuration == Configuration(frozenset({"antacid-tacrolimus"}), 2, False)
    assert configuration.as_dict() == {
        "antacid-tacrolimus": False,
        "max-cards": 2,
        "info-cards": False,
    }


def test_unknown_codes_are_ignored_whatever_their_value() -> None:
    # mg-declining is a topic, but not one order-sign offers
    sent = {"no-such-option": "x", "mg-declining": "off", "coverage": None, "info-cards": True}
    assert _read({"cds-service.configuration": sent}) == Configuration()


def test_the_crd_key_is_read_and_ours_wins_for_a_code_in_both() -> None:
    assert _read({"davinci-crd.configuration": {"max-cards": 1}}).max_cards == 1
    both = {
        "davinci-crd.configuration": {"max-cards": 1, "info-cards": False},
        "cds-service.configuration": {"max-cards": 4},
    }
    assert _read(both) == Configuration(max_cards=4, info_cards=False)


@pytest.mark.parametrize(
    ("code", "value", "problem"),
    [
        ("info-cards", "false", "must be true or false (a JSON boolean), not a string"),
        ("info-cards", 0, "must be true or false (a JSON boolean), not an integer"),
        ("info-cards", None, "must be true or false (a JSON boolean), not null"),
        ("antacid-tacrolimus", "no", "must be true or false (a JSON boolean), not a string"),
        ("antacid-tacrolimus", [False], "must be true or false (a JSON boolean), not an array"),
        ("max-cards", 0, "must be 1 or more, not 0"),
        ("max-cards", -3, "must be 1 or more, not -3"),
        ("max-cards", "2", "must be a whole number (a JSON integer), not a string"),
        ("max-cards", 2.5, "must be a whole number (a JSON integer), not a decimal number"),
        ("max-cards", True, "must be a whole number (a JSON integer), not a boolean"),
        ("max-cards", {"n": 2}, "must be a whole number (a JSON integer), not an object"),
    ],
)
def test_a_bad_value_is_a_400_naming_the_option(code: str, value: Any, problem: str) -> None:
    issues = _outcome({"cds-service.configuration": {code: value}})
    where = f"extension.cds-service.configuration.{code}"
    assert issues == [
        {
            "severity": "error",
            "code": "invalid",
            "diagnostics": f"{where} {problem}",
            "expression": [where],
        }
    ]


def test_every_bad_option_is_named_with_the_key_it_was_sent_under() -> None:
    issues = _outcome(
        {
            "davinci-crd.configuration": {"hypomagnesemia": "yes"},
            "cds-service.configuration": {"max-cards": 0, "info-cards": True},
        }
    )
    assert [issue["expression"] for issue in issues] == [
        ["extension.davinci-crd.configuration.hypomagnesemia"],
        ["extension.cds-service.configuration.max-cards"],
    ]


@pytest.mark.parametrize("key", ["cds-service.configuration", "davinci-crd.configuration"])
def test_configuration_that_is_not_an_object_is_a_400(key: str) -> None:
    issues = _outcome({key: [{"code": "max-cards", "value": 1}]})
    assert issues == [
        {
            "severity": "error",
            "code": "invalid",
            "diagnostics": f"extension.{key} must be an object of option codes and values, "
            "not an array",
            "expression": [f"extension.{key}"],
        }
    ]


def test_the_request_keeps_its_extension_on_both_decoding_paths() -> None:
    body = hook_request()
    body["extension"] = {"cds-service.configuration": {"max-cards": 2, "info-cards": False}}
    raw = orjson.dumps(body)
    fast = parse_hook_request(decode_hook_body(raw), expected_hook="patient-view")
    generic = parse_hook_request(orjson.loads(raw), expected_hook="patient-view")
    assert fast.extension == generic.extension == body["extension"]
    # a decimal number is refused the same way whichever path decoded it
    body["extension"] = {"cds-service.configuration": {"max-cards": 2.0}}
    fast = parse_hook_request(decode_hook_body(orjson.dumps(body)), expected_hook="patient-view")
    generic = parse_hook_request(orjson.loads(orjson.dumps(body)), expected_hook="patient-view")
    for request in (fast, generic):
        (issue,) = _outcome(request.extension)
        assert issue["diagnostics"].endswith("not a decimal number")


def test_an_extension_that_is_not_an_object_is_ignored_as_before() -> None:
    body = hook_request()
    body["extension"] = ["not", "an", "object"]
    request = parse_hook_request(body, expected_hook="patient-view")
    assert request.extension is None
