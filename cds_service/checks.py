"""Content checks: every card text rendered for every state the rules produce, before any clinician
sees one.

Loading ``cards/`` validates each file on its own. This goes further: it runs every fixture
scenario through the rules with the candidate content and renders the summary, detail and notes
of every finding strictly (an undefined variable is an error), and, where the rules declare
their topics' template values with examples (``cds_service.rules.TOPIC_SPECS``), renders every
topic's templates for each indicator with value sets generated from those examples. Every
rendered summary must fit the CDS Hooks limit. ``check-config`` prints the result and the
service does not start on a failing check.
"""

from __future__ import annotations

import getpass
import hashlib
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import UndefinedError

from . import rules as _rules
from .content import Content, ContentError
from .facts import build_facts
from .gathering._bundles import Flattened, flatten
from .gathering._drafts import draft_orders
from .gathering._medications import MedicationScan
from .profile import build_profile, load_site_content
from .protocol import ServiceError, parse_hook_request
from .render import SUMMARY_LIMIT, TemplateFailure, render_texts, summary_text
from .rules import ADVICE_SPEC, Finding, MgPlan, RuleConfig, run_rules
from .scenarios import Scenario

if TYPE_CHECKING:
    from .trust import ClientProfile, TrustConfig

_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")
_NO_ATTRIBUTE = re.compile(r"has no attribute '([^']+)'$")
_DRAFT_CAP = 200


@dataclass
class Problem:
    """One failing template: the file, the template, what is wrong, and the states it fails in."""

    file: Path
    template: str
    message: str
    states: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        where = self.states[0]
        if len(self.states) > 1:
            where += f" and {len(self.states) - 1} more"
        return f"{self.file}: {self.template}: {self.message} (in {where})"


@dataclass
class ContentCheck:
    """What the check rendered and what failed."""

    problems: dict[tuple[str, str, str], Problem] = field(default_factory=dict)
    renders: int = 0
    states: set[tuple[str, str, str]] = field(default_factory=set)
    scenarios: int = 0
    value_sets: int = 0
    # Formulary entries without a code: their suggestions are left out of every card.
    suggestions_off: dict[str, set[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add_problem(self, file: Path, template: str, message: str, state: str) -> None:
        problem = self.problems.setdefault(
            (str(file), template, message), Problem(file, template, message)
        )
        problem.states.append(state)

    def summary(self) -> str:
        """One line: what was rendered, for ``check-config``."""
        return (
            f"rendered {self.renders} card texts in {len(self.states)} topic states "
            f"({self.scenarios} fixture scenarios, {self.value_sets} generated value sets); "
            f"every summary within {SUMMARY_LIMIT} characters"
        )

    def suggestion_lines(self) -> list[str]:
        lines = []
        for entry, topics in sorted(self.suggestions_off.items()):
            seen = f" (would appear on {', '.join(sorted(topics))})" if topics else ""
            lines.append(f"suggestion off, no code in formulary.yaml: {entry}{seen}")
        return lines


def _failure_message(exc: TemplateFailure) -> str:
    error = exc.error
    if isinstance(error, UndefinedError):
        text = str(error.message or error)
        for pattern in (_UNDEFINED, _NO_ATTRIBUTE):
            found = pattern.search(text)
            if found:
                return f"undefined variable '{found.group(1)}'"
        return f"undefined variable ({text})"
    if isinstance(error, KeyError):
        return "no such template (the rule emits it)"
    return f"{type(error).__name__}: {error}"


def _topic_file(content: Content, topic: str) -> Path:
    return content.directory / "topics" / f"{topic}.yaml"


def check_finding(content: Content, finding: Finding, state: str, report: ContentCheck) -> None:
    """Render one finding's texts strictly; record what fails and any summary over the limit."""
    file = _topic_file(content, finding.topic)
    report.states.add((finding.topic, finding.indicator, state))
    try:
        summary, _detail = render_texts(finding, content)
    except TemplateFailure as exc:
        report.add_problem(file, exc.template, _failure_message(exc), state)
        return
    report.renders += 2 + len(finding.notes)
    text = summary_text(summary)
    if len(text) > SUMMARY_LIMIT:
        report.add_problem(
            file,
            f"summary.{finding.indicator}",
            f"summary is {len(text)} characters, over the limit of {SUMMARY_LIMIT}",
            f"{state}: {text!r}",
        )
    plan = finding.advice.suggestion if finding.advice else None
    for suggestion in (*finding.suggestions, *((plan,) if plan else ())):
        table = "lab_orders" if suggestion.kind == "lab" else "medications"
        for key in suggestion.keys:
            entry = getattr(content.formulary, table).get(key)
            if entry is not None and entry.code is None:
                report.suggestions_off.setdefault(f"{table}.{key}", set()).add(finding.topic)


# -- fixture scenarios ---------------------------------------------------------------------------


def scenario_findings(content: Content, config: RuleConfig, scenario: Scenario) -> list[Finding]:
    """Every finding the rules produce for a scenario's request (no cap, no snooze)."""
    request = parse_hook_request(scenario.request, expected_hook=str(scenario.request["hook"]))
    prefetch = request.prefetch or {}
    resources: dict[str, list[Any]] = {}
    for key, value in prefetch.items():
        flat = flatten(value) if value is not None else None
        resources[key] = flat.resources if isinstance(flat, Flattened) else []
    drafts = draft_orders(request.context, _DRAFT_CAP).resources
    scan = MedicationScan()
    for found in resources.values():
        scan.add(found)
    scan.add(drafts)
    facts = build_facts(
        hook=request.hook,
        context=request.context,
        resources=resources,
        draft_orders=drafts,
        medications=scan.index,
        content=content,
        now=scenario.now,
    )
    enabled = {code: topic.topic.enabled for code, topic in content.topics.items()}
    return [o.finding for o in run_rules(facts, config, enabled) if o.finding is not None]


# -- value sets generated from the rules' declared examples ----------------------------------


def value_sets(examples: Mapping[str, Sequence[object]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The typical values (each name's first example), then each other example of one name at a
    time, then every name at its last example; labelled for the report."""
    names = sorted(examples)
    base = {name: examples[name][0] for name in names if examples[name]}
    yield "typical example values", dict(base)
    for name in names:
        for value in list(examples[name])[1:]:
            yield f"{name}={value!r}", {**base, name: value}
    last = {name: examples[name][-1] for name in names if examples[name]}
    if last != base:
        yield "every value at its last example", last


def advice_plans() -> Iterator[tuple[str, MgPlan]]:
    """Every magnesium advice the rules can give: each action (with each caution in turn), all
    lines, over value sets generated from the advice's declared examples."""
    cautions = ADVICE_SPEC.cautions
    for label, values in value_sets(ADVICE_SPEC.values):
        for index, action in enumerate(ADVICE_SPEC.actions):
            caution = cautions[index % len(cautions)] if cautions else None
            yield (
                f"advice {action} ({label})",
                MgPlan(action, caution, ADVICE_SPEC.lines, values, None),
            )


def spec_findings(spec: Any, *, uses_advice: bool = False) -> Iterator[tuple[str, Finding]]:
    """Synthetic findings for a topic spec: every indicator × value set × patient on a CNI or
    not, every note at once, and every magnesium advice for the topics that quote it."""
    notes = tuple(getattr(spec, "notes", ()))
    mechanisms = tuple(getattr(spec, "mechanisms", ())) or (None,)
    plans: list[tuple[str, MgPlan | None]] = [("no advice", None)]
    if uses_advice:
        plans += list(advice_plans())
    for number, (label, values) in enumerate(value_sets(spec.values)):
        # Whether the patient is on a CNI changes only which sources are cited: both are
        # rendered with the typical values, and the rest on a CNI.
        cni_states = (True, False) if number == 0 else (True,)
        for mechanism in mechanisms:
            state_values = dict(values)
            state = f"value set {label}"
            if mechanism is not None:
                state_values["mechanism_key"] = mechanism
                state += f", mechanism {mechanism}"
            for indicator in spec.indicators:
                for on_cni in cni_states:
                    finding = Finding(
                        spec.code, indicator, state_values, notes=notes, on_cni=on_cni
                    )
                    yield f"{state}, on a CNI: {on_cni}", finding
    for label, plan in plans[1:]:
        for indicator in spec.indicators:
            typical = {name: examples[0] for name, examples in spec.values.items() if examples}
            finding = Finding(spec.code, indicator, typical, notes=notes, advice=plan)
            yield label, finding


def declared_specs() -> Sequence[Any]:
    """The rules' topic specs, when the rules declare them (``TOPIC_SPECS``)."""
    return tuple(getattr(_rules, "TOPIC_SPECS", ()))


# -- the whole check ---------------------------------------------------------------------------


def check_content(
    content: Content,
    scenarios: Iterable[Scenario] = (),
    specs: Sequence[Any] | None = None,
) -> ContentCheck:
    """Render every card text for every scenario's findings and every spec value set."""
    report = ContentCheck()
    config = build_profile(content).engine.config
    for scenario in scenarios:
        try:
            findings = scenario_findings(content, config, scenario)
        except ServiceError:
            continue  # a request the service answers with an error: no card to render
        report.scenarios += 1
        for finding in findings:
            check_finding(content, finding, f"scenario {scenario.name}", report)
    for spec in declared_specs() if specs is None else specs:
        if spec.code not in content.topics:
            continue
        uses_advice = content.topics[spec.code].uses_advice
        for state, finding in spec_findings(spec, uses_advice=uses_advice):
            report.value_sets += 1
            check_finding(content, finding, state, report)
    for table in ("medications", "lab_orders"):
        for key, entry in getattr(content.formulary, table).items():
            if entry.code is None:
                report.suggestions_off.setdefault(f"{table}.{key}", set())
    return report


def fixture_scenarios() -> list[Scenario]:
    """The fixture scenarios shipped beside the service (none when it is installed without)."""
    from .scenarios import SCENARIOS_DIR, all_scenarios

    return all_scenarios(SCENARIOS_DIR, shift=False) if SCENARIOS_DIR.is_dir() else []


def checked_content(directory: Path, overlays: Sequence[Path] = ()) -> tuple[Content, ContentCheck]:
    """Load ``cards/`` (with overlay folders on top) and run the content check;
    ``ContentError`` lists every failing template."""
    content = load_site_content(directory, overlays)
    return content, _passing(content)


def _passing(content: Content) -> ContentCheck:
    report = check_content(content, fixture_scenarios())
    if not report.ok:
        problems = "\n".join(f"  - {problem}" for problem in report.problems.values())
        raise ContentError(f"content check failed ({len(report.problems)}):\n{problems}")
    return report


@dataclass(frozen=True, slots=True)
class OverlayUse:
    """An overlay folder the trust file names, and the profiles that name it."""

    folder: Path
    label: str
    named_by: tuple[str, ...]
    """``default_profile`` or ``clients[i] (iss)``, for each profile naming the folder."""


def trust_overlays(trust: TrustConfig) -> list[OverlayUse]:
    """Each distinct overlay folder of the trust file's profiles, in the order it is named."""
    named: list[tuple[str, ClientProfile]] = []
    if trust.default_profile is not None:
        named.append(("default_profile", trust.default_profile))
    for index, client in enumerate(trust.clients):
        if client.profile is not None:
            named.append((f"clients[{index}] ({client.iss})", client.profile))
    uses: dict[Path, OverlayUse] = {}
    for who, profile in named:
        if profile.content is None:
            continue
        use = uses.get(profile.content)
        by = (*use.named_by, who) if use else (who,)
        uses[profile.content] = OverlayUse(profile.content, profile.content_label, by)
    return list(uses.values())


def startup_content(directory: Path, overlays: Sequence[Path] = ()) -> Content:
    """The content the service starts with (``cards/``, with overlay folders on top), checked
    like ``checked_content``; a check that passed for the same content and the same service code
    is not run again (its result depends on nothing else), so a worker or a restart need not pay
    for it twice."""
    content = load_site_content(directory, overlays)
    marker = _passed_marker(content)
    if marker.exists():
        return content
    _passing(content)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(content.governance.version.fingerprint, encoding="utf-8")
    except OSError:
        pass  # nowhere to remember it: the next start checks again
    return content


def _code_digest() -> str:
    """A hash of this package's source and of the fixture scenarios the check renders."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    from .scenarios import SCENARIOS_DIR

    files = sorted(package.rglob("*.py"))
    if SCENARIOS_DIR.is_dir():
        files += sorted(SCENARIOS_DIR.glob("*.json"))
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _passed_marker(content: Content) -> Path:
    """Where a passed check is remembered: keyed by the content's fingerprint and the code."""
    key = f"{content.governance.version.fingerprint}-{_code_digest()}"
    return Path(tempfile.gettempdir()) / f"cds-service-{getpass.getuser()}" / f"checked-{key}"
