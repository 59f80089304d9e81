"""Load ``cards/`` once: merge a site overlay, validate every file, compile templates and tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ValidationError

from ._errors import ContentError
from ._governance import Governance, TopicGovernance, load_governance
from ._medications import MedicationIndex, index_medications
from ._schema import (
    AdviceText,
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
from ._spec import AdviceSpec, TopicSpec

_USABLE_LAB_STATUSES = frozenset({"final", "amended", "corrected"})
_WITH_PRELIMINARY = _USABLE_LAB_STATUSES | {"preliminary"}
# Callables every template may use besides its values.
_TEMPLATE_FUNCTIONS = frozenset({"cite"})

_Model = TypeVar("_Model", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class CompiledTopic:
    topic: Topic
    spec: TopicSpec
    path: Path
    summaries: Mapping[str, Template]
    detail: Template
    notes: Mapping[str, Template]
    mechanisms: Mapping[str, tuple[Template, Template]]
    """mechanism key → (mechanism, alternative) templates"""
    cited: tuple[str, ...]
    """Every source key a template of this topic may cite, in order of first mention."""
    uses_advice: bool
    """Whether its templates quote the shared magnesium advice (and so its citations)."""


@dataclass(frozen=True, slots=True)
class CompiledAdvice:
    actions: Mapping[str, Template]
    cautions: Mapping[str, Template]
    lines: Mapping[str, Template]
    cited: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Content:
    """Everything a site configures, validated and compiled."""

    directory: Path
    overlays: tuple[Path, ...]
    settings: SiteSettings
    analytes: Mapping[str, Analyte]
    analyte_by_code: Mapping[tuple[str, str], str]
    condition_by_code: Mapping[tuple[str, str], str]
    units: Mapping[str, Mapping[str, UnitSpec]]
    canonical_units: Mapping[str, str]
    medications: MedicationIndex
    formulary: Formulary
    sources: Mapping[str, Source]
    advice: CompiledAdvice
    topics: Mapping[str, CompiledTopic]
    governance: Governance

    @property
    def usable_lab_statuses(self) -> frozenset[str]:
        """Observation statuses whose results are used; preliminary ones only by setting.

        Derived from the settings on every read, so a content whose settings are replaced never
        keeps the statuses of the settings it was loaded with.
        """
        if self.settings.accept_preliminary_results:
            return _WITH_PRELIMINARY
        return _USABLE_LAB_STATUSES


_ENV = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True
)


_UNIT_KEYS: dict[str, str] = {}


def unit_key(unit: str) -> str:
    """Units match case-insensitively and ignoring spaces ("mL/min/1.73 m2" = "mL/min/1.73m2").

    Memoised: a request carries thousands of results in a handful of distinct units.
    """
    key = _UNIT_KEYS.get(unit)
    if key is None:
        key = "".join(unit.split()).lower()
        if len(_UNIT_KEYS) < 10_000:
            _UNIT_KEYS[unit] = key
    return key


# --- reading and merging --------------------------------------------------------------------
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


def merge(base: Any, overlay: Any) -> Any:
    """An overlay on top of a base: mappings merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    return overlay


def _read_layered(directory: Path, overlays: Sequence[Path], relative: str) -> tuple[Any, Path]:
    """A file of ``cards/`` with every overlay's copy merged on top; names the last one read."""
    path = directory / relative
    data = _read_yaml(path)
    for overlay in overlays:
        layer = overlay / relative
        if layer.is_file():
            data, path = merge(data, _read_yaml(layer)), layer
    return data, path


def _validate(model: type[_Model], path: Path, data: Any) -> _Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(top level)'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        raise ContentError(f"{path}: {problems}") from None


def _load(model: type[_Model], directory: Path, overlays: Sequence[Path], relative: str) -> _Model:
    data, path = _read_layered(directory, overlays, relative)
    return _validate(model, path, data)


# --- templates ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Templates:
    """Compiles the templates of one file: each is checked for its syntax, the variables it
    uses and the sources it cites, and a problem is reported with the file and the field."""

    path: Path
    allowed: frozenset[str]
    sources: Mapping[str, Source]
    cited: list[str] = field(default_factory=list)
    """Source keys named in ``cite(...)`` calls, in order of first mention."""
    used: set[str] = field(default_factory=set)
    """Every variable the templates use."""

    def compile(self, where: str, source: str) -> Template:
        try:
            parsed = _ENV.parse(source)
        except TemplateSyntaxError as exc:
            raise ContentError(f"{self.path}: {where}: line {exc.lineno}: {exc.message}") from None
        used = meta.find_undeclared_variables(parsed)
        self.used |= used
        unknown = sorted(used - self.allowed - _TEMPLATE_FUNCTIONS)
        if unknown:
            raise ContentError(
                f"{self.path}: {where}: unknown variable {', '.join(unknown)} "
                "(not provided by the rule for this topic)"
            )
        keys = _cite_keys(parsed)
        missing = [key for key in keys if key not in self.sources]
        if missing:
            raise ContentError(
                f"{self.path}: {where}: cites sources not in sources.yaml: {missing}"
            )
        self.cited.extend(key for key in keys if key not in self.cited)
        return _ENV.from_string(source)


def _cite_keys(parsed: nodes.Template) -> list[str]:
    """Source keys named in the ``cite(...)`` calls of a template, in order of first mention."""
    keys: list[str] = []
    for call in parsed.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name == "cite":
            for arg in call.args:
                if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                    keys.append(arg.value)
    return list(dict.fromkeys(keys))


def _load_topic(
    directory: Path,
    overlays: Sequence[Path],
    spec: TopicSpec,
    sources: Mapping[str, Source],
) -> CompiledTopic:
    relative = f"topics/{spec.code}.yaml"
    data, path = _read_layered(directory, overlays, relative)
    topic = _validate(Topic, path, data)
    if topic.code != spec.code:
        raise ContentError(f"{path}: code: '{topic.code}' must match the file name '{spec.code}'")
    for section, needed, present in (
        ("summary", spec.indicators, topic.summary),
        ("notes", spec.notes, topic.notes),
        ("mechanisms", spec.mechanisms, topic.mechanisms),
    ):
        missing = [key for key in needed if key not in present]
        if missing:
            raise ContentError(f"{path}: {section}: missing {missing} (the rule uses them)")
    unused = [key for key in topic.summary if key not in spec.indicators]
    if unused:
        raise ContentError(f"{path}: summary: the rule never emits {unused}")
    templates = _Templates(path, spec.template_names(), sources)
    compile_ = templates.compile
    # Keyword arguments are evaluated in order: ``cited`` comes last, once all are compiled.
    return CompiledTopic(
        topic=topic,
        spec=spec,
        path=path,
        summaries={
            indicator: compile_(f"summary.{indicator}", text)
            for indicator, text in topic.summary.items()
        },
        detail=compile_("detail", topic.detail),
        notes={key: compile_(f"notes.{key}", text) for key, text in topic.notes.items()},
        mechanisms={
            key: (
                compile_(f"mechanisms.{key}.mechanism", m.mechanism),
                compile_(f"mechanisms.{key}.alternative", m.alternative),
            )
            for key, m in topic.mechanisms.items()
        },
        cited=tuple(templates.cited),
        uses_advice=bool(templates.used & {"mg_advice", "mg_action", "mg_caution"}),
    )


def _cites(topic: CompiledTopic, advice: CompiledAdvice, spacing: Iterable[str]) -> list[str]:
    """Every source a card of this topic can cite: its own templates, the shared advice it
    quotes, and the spacing table's labels for the card that lists intervals."""
    cites = list(topic.cited)
    if topic.uses_advice:
        cites += advice.cited
    if "spacing" in topic.spec.values:
        cites += spacing
    return list(dict.fromkeys(cites))


def _load_governance(
    directory: Path,
    overlays: Sequence[Path],
    settings: SiteSettings,
    sources: Mapping[str, Source],
    topics: Mapping[str, CompiledTopic],
    advice: CompiledAdvice,
    spacing: Iterable[str],
) -> Governance:
    spacing = list(spacing)
    return load_governance(
        directory,
        settings,
        sources,
        topics={
            code: TopicGovernance(t.path, t.topic.page, _cites(t, advice, spacing))
            for code, t in topics.items()
        },
        hti1=_read_layered(directory, overlays, "hti1.yaml"),
        overlays=overlays,
    )


def _load_advice(
    directory: Path, overlays: Sequence[Path], spec: AdviceSpec, sources: Mapping[str, Source]
) -> CompiledAdvice:
    data, path = _read_layered(directory, overlays, "advice.yaml")
    advice = _validate(AdviceText, path, data)
    for section, needed, present in (
        ("actions", spec.actions, advice.actions),
        ("cautions", spec.cautions, advice.cautions),
        ("lines", spec.lines, advice.lines),
    ):
        missing = [key for key in needed if key not in present]
        if missing:
            raise ContentError(f"{path}: {section}: missing {missing} (the rules use them)")
    templates = _Templates(path, frozenset(spec.values), sources)
    compile_ = templates.compile
    return CompiledAdvice(
        actions={k: compile_(f"actions.{k}", t) for k, t in advice.actions.items()},
        cautions={k: compile_(f"cautions.{k}", t) for k, t in advice.cautions.items()},
        lines={k: compile_(f"lines.{k}", t) for k, t in advice.lines.items()},
        cited=tuple(templates.cited),
    )


def _load_topics(
    directory: Path,
    overlays: Sequence[Path],
    specs: Sequence[TopicSpec],
    sources: Mapping[str, Source],
) -> dict[str, CompiledTopic]:
    present = {path.stem for path in (directory / "topics").glob("*.yaml")}
    for overlay in overlays:
        present |= {path.stem for path in (overlay / "topics").glob("*.yaml")}
    codes = [spec.code for spec in specs]
    missing = [code for code in codes if code not in present]
    if missing:
        raise ContentError(f"{directory / 'topics'}: topic files missing: {missing}")
    unknown = sorted(present - set(codes))
    if unknown:
        raise ContentError(f"{directory / 'topics'}: no rule for topics {unknown}")
    return {spec.code: _load_topic(directory, overlays, spec, sources) for spec in specs}


# --- value sets -----------------------------------------------------------------------------


def _index_codes(path: Path, value_sets: ValueSets) -> dict[tuple[str, str], str]:
    analyte_by_code: dict[tuple[str, str], str] = {}
    for name, analyte in value_sets.analytes.items():
        for code in analyte.codes:
            if (analyte.system, code) in analyte_by_code:
                raise ContentError(
                    f"{path}: analytes.{name}.codes: {code} "
                    f"is already in {analyte_by_code[(analyte.system, code)]}"
                )
            analyte_by_code[(analyte.system, code)] = name
    return analyte_by_code


def load_content(
    directory: Path,
    specs: Sequence[TopicSpec],
    advice: AdviceSpec,
    *,
    overlays: Sequence[Path] = (),
) -> Content:
    """Load and validate ``cards/`` (with overlays merged on top); raise ``ContentError``.

    ``specs`` are the topics the rules implement and ``advice`` what the shared magnesium
    advice provides: the content is checked against them, so a template can only use values a
    rule provides.
    """
    directory = Path(directory)
    overlays = tuple(Path(overlay) for overlay in overlays)
    for folder in (directory, *overlays):
        if not folder.is_dir():
            raise ContentError(f"{folder}: not a directory")
    settings = _load(SiteSettings, directory, overlays, "settings.yaml")
    value_sets_data, value_sets_path = _read_layered(directory, overlays, "valuesets.yaml")
    value_sets = _validate(ValueSets, value_sets_path, value_sets_data)
    meds_data, meds_path = _read_layered(directory, overlays, "medications.yaml")
    meds = _validate(Medications, meds_path, meds_data)
    formulary = _load(Formulary, directory, overlays, "formulary.yaml")
    sources = _load(Sources, directory, overlays, "sources.yaml").sources
    for name, entry in meds.spacing.items():
        unknown = [key for key in entry.sources if key not in sources]
        if unknown:
            raise ContentError(
                f"{meds_path}: spacing.{name}.sources: not in sources.yaml: {unknown}"
            )
    advice_text = _load_advice(directory, overlays, advice, sources)
    topics = _load_topics(directory, overlays, specs, sources)
    spacing_sources = [key for entry in meds.spacing.values() for key in entry.sources]
    return Content(
        directory=directory,
        overlays=overlays,
        settings=settings,
        analytes=value_sets.analytes,
        analyte_by_code=_index_codes(value_sets_path, value_sets),
        condition_by_code={
            (code.system, code.code): name
            for name, condition in value_sets.conditions.items()
            for code in condition.codes
        },
        units={
            name: {unit_key(unit): spec for unit, spec in analyte.units.items()}
            for name, analyte in value_sets.analytes.items()
        },
        canonical_units={
            name: analyte.canonical_unit for name, analyte in value_sets.analytes.items()
        },
        medications=index_medications(meds),
        formulary=formulary,
        sources=sources,
        advice=advice_text,
        topics=topics,
        governance=_load_governance(
            directory, overlays, settings, sources, topics, advice_text, spacing_sources
        ),
    )
