"""Load ``cards/`` once: validate every file, compile templates and lookup tables."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from jinja2 import StrictUndefined, Template, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ValidationError

from ._schema import (
    Analyte,
    Formulary,
    Medications,
    SiteSettings,
    Source,
    Sources,
    Topic,
    UnitSpec,
    ValueSets,
)

TOPIC_CODES = (
    "hypomagnesemia",
    "mg-digoxin",
    "mg-refractory-hypokalemia",
    "mg-refractory-hypocalcemia",
    "antacid-tacrolimus",
    "antacid-mycophenolate",
    "mg-supplement-spacing",
    "mg-monitoring-gap",
    "mg-wasting-comedication",
    "mg-declining",
)

# What each topic file must provide: the indicators its rule can emit, the context notes it may add
# and the mechanisms it names. Checked at load so a site cannot delete text a rule still needs.
TOPIC_REQUIREMENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "hypomagnesemia": (
        ("critical", "warning", "info"),
        (
            "kidney",
            "egfr_low",
            "on_cni",
            "cni_persistent",
            "ppi",
            "diuretic",
            "other_wasting",
            "digoxin",
        ),
        (),
    ),
    "mg-digoxin": (("warning",), ("kidney",), ()),
    "mg-refractory-hypokalemia": (("critical", "warning"), ("on_cni",), ()),
    "mg-refractory-hypocalcemia": (("warning",), ("on_cni",), ()),
    "antacid-tacrolimus": (("warning", "info"), (), ()),
    "antacid-mycophenolate": (("warning", "info"), (), ()),
    "mg-supplement-spacing": (("info",), (), ()),
    "mg-monitoring-gap": (("warning", "info"), (), ()),
    "mg-wasting-comedication": (
        ("warning", "info"),
        (),
        ("ppi", "loop_diuretic", "thiazide", "other_mg_wasting", "mtor_inhibitor"),
    ),
    "mg-declining": (("info",), (), ()),
}

WORD = re.compile(r"[^\W_]+")
_USABLE_LAB_STATUSES = frozenset({"final", "amended", "corrected"})
_WITH_PRELIMINARY = _USABLE_LAB_STATUSES | {"preliminary"}

_Model = TypeVar("_Model", bound=BaseModel)


class ContentError(Exception):
    """A ``cards/`` file is broken: the message names the file, the field and the reason."""


@dataclass(frozen=True, slots=True)
class CompiledTopic:
    topic: Topic
    summaries: Mapping[str, Template]
    detail: Template
    notes: Mapping[str, Template]


@dataclass(frozen=True, slots=True)
class MedicationIndex:
    """Lookup tables for classifying a medication by code or by name."""

    rxnorm_system: str
    class_by_ingredient_code: Mapping[str, frozenset[str]]
    class_by_product_code: Mapping[str, frozenset[str]]
    class_by_ingredient_name: Mapping[str, frozenset[str]]
    class_by_name_words: Mapping[tuple[str, ...], frozenset[str]]
    longest_name_words: int
    groups: Mapping[str, frozenset[str]]
    displays: Mapping[str, str]
    # Classification of a medication concept never changes for a loaded content: memoised.
    concept_cache: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def match_names(self, text: str) -> list[tuple[str, frozenset[str]]]:
        """Configured names found in a text as whole words: (the words as written, classes)."""
        words = WORD.findall(text)
        lowered = [word.lower() for word in words]
        found = []
        for start in range(len(words)):
            for size in range(1, min(self.longest_name_words, len(words) - start) + 1):
                classes = self.class_by_name_words.get(tuple(lowered[start : start + size]))
                if classes:
                    found.append((" ".join(words[start : start + size]), classes))
        return found


@dataclass(frozen=True, slots=True)
class Content:
    """Everything a site configures, validated and compiled."""

    directory: Path
    settings: SiteSettings
    analytes: Mapping[str, Analyte]
    analyte_by_code: Mapping[tuple[str, str], str]
    units: Mapping[str, Mapping[str, UnitSpec]]
    canonical_units: Mapping[str, str]
    medications: MedicationIndex
    formulary: Formulary
    sources: Mapping[str, Source]
    topics: Mapping[str, CompiledTopic]

    @property
    def usable_lab_statuses(self) -> frozenset[str]:
        """Observation statuses whose results are used; preliminary ones only by setting."""
        if self.settings.accept_preliminary_results:
            return _WITH_PRELIMINARY
        return _USABLE_LAB_STATUSES


_ENV = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True
)


# libyaml's safe loader where PyYAML was built with it: the same documents, parsed several times
# faster than by the pure-Python SafeLoader (parsing was most of loading cards/ at start-up).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_YAML_LOADER)
    except FileNotFoundError:
        raise ContentError(f"{path}: file is missing") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ContentError(f"{path}: {where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ContentError(f"{path}: {exc}") from None


def _validate(model: type[_Model], path: Path, data: Any) -> _Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(top level)'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        raise ContentError(f"{path}: {problems}") from None


def _compile(path: Path, field: str, source: str) -> Template:
    try:
        return _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise ContentError(f"{path}: {field}: line {exc.lineno}: {exc.message}") from None


def _unit_key(unit: str) -> str:
    return unit.strip().lower()


def _index_medications(meds: Medications) -> MedicationIndex:
    by_code: dict[str, set[str]] = {}
    by_name: dict[str, set[str]] = {}
    matched: dict[str, set[str]] = {}
    for class_name, med_class in meds.classes.items():
        for ingredient in med_class.ingredients:
            if ingredient.code:
                by_code.setdefault(ingredient.code, set()).add(class_name)
            by_name.setdefault(ingredient.name.lower(), set()).add(class_name)
            matched.setdefault(ingredient.name.lower(), set()).add(class_name)
        for name in med_class.names:
            matched.setdefault(name.lower(), set()).add(class_name)
    by_product = {
        code: frozenset(cls for name in names for cls in by_name[name.lower()])
        for code, names in meds.products.items()
    }
    # Names are matched as whole words: a hyphen or any other non-word character separates
    # words, so hyphen-joined combination names ("aluminum hydroxide-magnesium hydroxide") match
    # each ingredient, and "Prografix" does not match Prograf.
    by_words: dict[tuple[str, ...], set[str]] = {}
    for name, classes in matched.items():
        by_words.setdefault(tuple(WORD.findall(name)), set()).update(classes)
    return MedicationIndex(
        rxnorm_system=meds.rxnorm_system,
        class_by_ingredient_code={k: frozenset(v) for k, v in by_code.items()},
        class_by_product_code=by_product,
        class_by_ingredient_name={k: frozenset(v) for k, v in by_name.items()},
        class_by_name_words={k: frozenset(v) for k, v in by_words.items()},
        longest_name_words=max(len(words) for words in by_words),
        groups={name: frozenset(members) for name, members in meds.groups.items()},
        displays={name: cls.display for name, cls in meds.classes.items()},
    )


def _load_topic(path: Path) -> CompiledTopic:
    topic = _validate(Topic, path, _read_yaml(path))
    if topic.code != path.stem:
        raise ContentError(f"{path}: code: '{topic.code}' must match the file name '{path.stem}'")
    indicators, notes, mechanisms = TOPIC_REQUIREMENTS.get(topic.code, ((), (), ()))
    for section, needed, present in (
        ("summary", indicators, topic.summary),
        ("notes", notes, topic.notes),
        ("mechanisms", mechanisms, topic.mechanisms),
    ):
        missing = [key for key in needed if key not in present]
        if missing:
            raise ContentError(f"{path}: {section}: missing {missing} (the rule uses them)")
    return CompiledTopic(
        topic=topic,
        summaries={
            indicator: _compile(path, f"summary.{indicator}", text)
            for indicator, text in topic.summary.items()
        },
        detail=_compile(path, "detail", topic.detail),
        notes={key: _compile(path, f"notes.{key}", text) for key, text in topic.notes.items()},
    )


def load_content(directory: Path) -> Content:
    """Load and validate a ``cards/`` directory; raise ``ContentError`` naming what is wrong."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ContentError(f"{directory}: not a directory")
    settings = _validate(
        SiteSettings, directory / "settings.yaml", _read_yaml(directory / "settings.yaml")
    )
    value_sets = _validate(
        ValueSets, directory / "valuesets.yaml", _read_yaml(directory / "valuesets.yaml")
    )
    meds = _validate(
        Medications, directory / "medications.yaml", _read_yaml(directory / "medications.yaml")
    )
    formulary = _validate(
        Formulary, directory / "formulary.yaml", _read_yaml(directory / "formulary.yaml")
    )
    sources = _validate(Sources, directory / "sources.yaml", _read_yaml(directory / "sources.yaml"))

    topics = {
        path.stem: _load_topic(path) for path in sorted((directory / "topics").glob("*.yaml"))
    }
    missing = [code for code in TOPIC_CODES if code not in topics]
    if missing:
        raise ContentError(f"{directory / 'topics'}: topic files missing: {missing}")
    unknown = [code for code in topics if code not in TOPIC_CODES]
    if unknown:
        raise ContentError(f"{directory / 'topics'}: no rule for topics {unknown}")
    for code, compiled in topics.items():
        bad = [ref for ref in compiled.topic.sources if ref not in sources.sources]
        if bad:
            raise ContentError(f"{directory / 'topics' / code}.yaml: sources: unknown {bad}")

    analyte_by_code: dict[tuple[str, str], str] = {}
    for name, analyte in value_sets.analytes.items():
        for code in analyte.codes:
            if (analyte.system, code) in analyte_by_code:
                raise ContentError(
                    f"{directory / 'valuesets.yaml'}: analytes.{name}.codes: {code} "
                    f"is already in {analyte_by_code[(analyte.system, code)]}"
                )
            analyte_by_code[(analyte.system, code)] = name
    return Content(
        directory=directory,
        settings=settings,
        analytes=value_sets.analytes,
        analyte_by_code=analyte_by_code,
        units={
            name: {_unit_key(unit): spec for unit, spec in analyte.units.items()}
            for name, analyte in value_sets.analytes.items()
        },
        canonical_units={
            name: analyte.canonical_unit for name, analyte in value_sets.analytes.items()
        },
        medications=_index_medications(meds),
        formulary=formulary,
        sources=sources.sources,
        topics=topics,
    )
