"""``cds-service``: serve, evaluate a request offline, check the content, report, demo.

Settings come from ``CDS_*`` environment variables or a ``.env`` file (see the README). A
problem with a setting, a file or a value is reported in one or two lines naming it and the
fix, with exit code 2; never with a traceback.
"""

from __future__ import annotations

import argparse
import gc
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import ConfigurationError

if TYPE_CHECKING:
    from .content import Content
    from .settings import Settings

CONFIGURATION_ERROR = 2


def _settings() -> Settings:
    """The settings, with logging configured from them: every command honours CDS_LOG_LEVEL."""
    from ._logging import configure_logging
    from .settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level, access_log=settings.access_log)
    return settings


def _content(directory: Path, source: str) -> Content:
    from .content import ContentError
    from .profile import load_site_content

    try:
        return load_site_content(directory)
    except ContentError as exc:
        raise ConfigurationError(
            f"{exc}\nfix the file, or use another folder ({source}); "
            "cds-service check-config DIR names every problem"
        ) from None


def _serve(args: argparse.Namespace) -> int:
    # No cyclic collections during start-up: imports and content build a heap that the app
    # freezes once started (``settle_heap``, which turns the GC back on).
    gc.disable()
    try:
        from .serving import serve

        return serve(_settings(), host=args.host, port=args.port, workers=args.workers)
    finally:
        gc.enable()


def _parse_now(value: str | None, option: str = "--now") -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigurationError(
            f"{option} {value!r} is not an ISO date or date-time: e.g. 2026-11-20 or "
            "2026-11-20T12:00:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_REQUEST_HINT = "give a CDS Hooks request or a fixture scenario (fixtures/scenarios/*.json)"


def _read_json(path: Path) -> Any:
    import orjson

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(f"{path}: no such file: {_REQUEST_HINT}") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{path} is a directory: {_REQUEST_HINT}") from None
    except OSError as exc:
        raise ConfigurationError(f"{path} cannot be read ({exc.strerror or exc})") from None
    if not data.strip():
        raise ConfigurationError(f"{path} is empty: {_REQUEST_HINT}")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{path} is not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno}): "
            "is the file complete?"
        ) from None


def _load_request(path: Path) -> tuple[Any, datetime | None]:
    """A CDS Hooks request, or a fixture scenario (whose dates are shifted to today)."""
    from .scenarios import is_scenario, load_scenario

    payload = _read_json(path)
    if not is_scenario(payload):
        return payload, None
    try:
        scenario = load_scenario(path)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"{path} is not a valid fixture scenario ({type(exc).__name__}: {exc})"
        ) from None
    return scenario.request, scenario.now


def _evaluate(args: argparse.Namespace) -> int:
    import orjson

    from .engine import trace
    from .gathering import HttpFhirClient
    from .pipeline import CdsService, utc_now
    from .protocol import SERVICES, ServiceError

    settings = _settings()
    payload, scenario_now = _load_request(args.request)
    now = _parse_now(args.now) or scenario_now
    if args.cards:
        content = _content(args.cards, "--cards")
    else:
        content = _content(settings.cards_dir, "CDS_CARDS_DIR")
    hook = payload.get("hook") if isinstance(payload, dict) else None
    service_id = next((s.id for s in SERVICES.values() if s.hook == hook), None)
    if service_id is None:
        hooks = ", ".join(s.hook for s in SERVICES.values())
        raise ConfigurationError(
            f"{args.request}: unknown or missing hook {hook!r}: a request names one of {hooks}"
        )
    service = CdsService(
        settings=settings,
        content=content,
        store=None,
        fhir_client=HttpFhirClient(),
        clock=(lambda: now) if now else utc_now,
    )
    try:
        result = service.hook(service_id, payload)
    except ServiceError as exc:
        sys.stdout.buffer.write(orjson.dumps(exc.outcome(), option=orjson.OPT_INDENT_2) + b"\n")
        return 1
    output: dict[str, Any] = dict(result.response)
    if args.trace:
        # The client's configuration options (what differs from the defaults); the cards they
        # left out are in the trace's "withheld", each with the option that removed it.
        output["trace"] = {
            **trace(result.evaluation),
            "configuration": result.configuration.as_dict(),
        }
    sys.stdout.buffer.write(orjson.dumps(output, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from .checks import checked_content
    from .content import ContentError

    settings = _settings()  # a bad setting is an error here too, whatever the directory
    directory = args.directory or settings.cards_dir
    try:
        content, report = checked_content(directory)
    except ContentError as exc:
        print(f"cards/ is invalid: {exc}", file=sys.stderr)
        return 1
    version = content.governance.version
    print(f"{directory}: OK ({len(content.topics)} topics, {len(content.analytes)} analytes)")
    print(f"content version {version.version}, released {version.released}, {version.fingerprint}")
    print(report.summary())
    for line in report.suggestion_lines():
        print(line)
    trust_file = args.trust_file or settings.trust_file
    return _check_overlays(directory, trust_file) if trust_file is not None else 0


def _check_overlays(directory: Path, trust_file: Path) -> int:
    """Each overlay folder the trust file's profiles name, on top of ``directory``, checked as
    the service does at start-up."""
    from .checks import checked_content, trust_overlays
    from .content import ContentError
    from .trust import TrustConfigError, load_trust_config

    try:
        trust = load_trust_config(trust_file, require_clients=False)
    except TrustConfigError as exc:
        print(f"the trust file is invalid: {exc}", file=sys.stderr)
        return 1
    overlays = trust_overlays(trust)
    print(f"{trust_file}: {len(overlays)} overlay folder{'' if len(overlays) == 1 else 's'}")
    failed = 0
    for use in overlays:
        named_by = ", ".join(use.named_by)
        try:
            content, report = checked_content(directory, (use.folder,))
        except ContentError as exc:
            print(f"overlay {use.label} (for {named_by}) is invalid: {exc}", file=sys.stderr)
            failed += 1
            continue
        version = content.governance.version
        print(
            f"overlay {use.label} (for {named_by}): OK, content version {version.version}, "
            f"released {version.released}, {version.fingerprint}"
        )
        print(f"  {report.summary()}")
    return 1 if failed else 0


def _export(store: Any, export: str, since: datetime | None) -> None:
    """Stream the governance export to stdout: CSV, or ``{"cards": [...]}``."""
    import orjson

    from .store import csv_lines

    rows = store.export(since=since)
    out = sys.stdout.buffer
    if export == "csv":
        for chunk in csv_lines(rows):
            out.write(chunk.encode())
        return
    out.write(b'{"cards": [')
    for index, row in enumerate(rows):
        out.write((b",\n  " if index else b"\n  ") + orjson.dumps(row))
    out.write(b"\n]}\n")


def _report(args: argparse.Namespace) -> int:
    import orjson

    from .store import Store, describe_url, format_by_version_text, format_report_text

    settings = _settings()
    since = _parse_now(args.since, "--since")
    print(f"database: {describe_url(settings.database_url)}", file=sys.stderr)
    store = Store.open(settings.database_url, create=False)
    try:
        if args.export:
            _export(store, args.export, since)
            return 0
        if args.by_version:
            by_version = store.by_version(since=since)
            if args.format == "json":
                out = orjson.dumps(by_version, option=orjson.OPT_INDENT_2)
                sys.stdout.buffer.write(out + b"\n")
            else:
                print(format_by_version_text(by_version))
            return 0
        report = store.report(since=since)
    finally:
        store.close()
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(format_report_text(report))
    return 0


def _docs(args: argparse.Namespace) -> int:
    from .pages import reference_markdown, topic_pages, write_site

    if args.out is None and args.markdown is None:
        raise ConfigurationError("docs: give --out DIR, --markdown FILE, or both")
    if args.cards:
        content = _content(args.cards, "--cards")
    else:
        content = _content(_settings().cards_dir, "CDS_CARDS_DIR")
    version = content.governance.version.version
    if args.out is not None:
        written = write_site(content, args.out)
        print(f"{args.out}: {len(written)} pages (content version {version})")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(reference_markdown(topic_pages(content)), encoding="utf-8")
        print(f"{args.markdown}: written (content version {version})")
    return 0


def _at(value: str | None) -> datetime:
    """``--at``: a date-time, or a date (the end of that day, UTC); default now."""
    if value is None:
        return datetime.now(UTC)
    parsed = _parse_now(value)
    assert parsed is not None
    if len(value.strip()) == 10:
        parsed = parsed.replace(hour=23, minute=59, second=59)
    return parsed


def _simulate(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from ._logging import configure_logging

    # Before the service's modules load (Alembic logs at import): each call's info line would
    # be most of the work, and odd data is counted in the summary rather than logged.
    configure_logging("ERROR")
    from .settings import load_settings
    from .simulate import HOOKS, SimulateOptions, SimulationError, headline_table, simulate

    hooks = tuple(h.strip() for h in args.hooks.split(",") if h.strip())
    unknown = [h for h in hooks if h not in HOOKS]
    if unknown or not hooks:
        print(f"error: --hooks takes {', '.join(HOOKS)} (got {args.hooks!r})", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    at = _at(args.at)
    since = _parse_now(args.since) if args.since else at - timedelta(days=365)
    assert since is not None
    settings = load_settings()
    options = SimulateOptions(
        population=args.population,
        out=args.out,
        at=at,
        since=since,
        cards=args.cards or settings.cards_dir,
        hooks=tuple(h for h in HOOKS if h in hooks),
        compare=args.compare,
        workers=args.workers,
        with_detail=args.detail,
        hash_key=settings.patient_hash_key,
        progress=sys.stdout.isatty(),
        settle_heap=True,
    )
    try:
        summary = simulate(options)
    except SimulationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    population, timing = summary["population"], summary["timing"]
    print(
        f"{population['patients']:,} patients, {summary['calls'].get('patient-view', 0):,} "
        f"patient-views, {summary['orders']:,} orders replayed in {timing['total_s']:.1f} s "
        f"({timing['patients_per_s']:,.0f} patients/s)"
    )
    if population["malformed_lines"]:
        first = population["first_malformed"][0]
        print(
            f"skipped {population['malformed_lines']:,} malformed line(s), the first "
            f"{first['file']} line {first['line']}: {first['reason']}"
        )
    for name, count in summary["errors"].items():
        print(f"{count:,} call(s) answered {name} instead of cards")
    print()
    print(headline_table(summary))
    print(f"\n{args.out}/summary.json, cards.ndjson, report.html")
    return 0


def _demo(args: argparse.Namespace) -> int:
    gc.disable()  # as for serve
    try:
        from .demo import run_demo

        return run_demo(args.host, args.port)
    finally:
        gc.enable()


def _load_fixtures(args: argparse.Namespace) -> int:
    from .demo import load_fixtures

    _settings()
    return load_fixtures(args.fhir)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default in its help; options whose default depends on settings say so."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _command(
    commands: Any, name: str, summary: str, description: str | None = None
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=description or summary,
        formatter_class=_HelpFormatter,
    )
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _port(text: str) -> int:
    value = _positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError("must be at most 65535")
    return value


def _add_serve_command(commands: Any) -> None:
    serve = _command(
        commands,
        "serve",
        "run the HTTP service (uvicorn)",
        "Run the CDS Hooks service. With authentication off (no CDS_TRUST_FILE) it listens on "
        "127.0.0.1 only, unless --host says otherwise.",
    )
    serve.add_argument(
        "--host",
        help="address to listen on (default: 127.0.0.1 with auth off, 0.0.0.0 with auth on)",
    )
    serve.add_argument("--port", type=_port, default=8080, help="TCP port")
    serve.add_argument(
        "--workers", type=_positive, default=1, help="worker processes (one per core)"
    )
    serve.set_defaults(run=_serve)


def _add_evaluate_command(commands: Any) -> None:
    evaluate = _command(
        commands,
        "evaluate",
        "run one CDS Hooks request offline",
        "Run one CDS Hooks request (or a fixture scenario, dated to today) offline and print the "
        "response the HTTP endpoint gives. Without prefetch, data is fetched from fhirServer.",
    )
    evaluate.add_argument(
        "request", type=Path, help="a CDS Hooks request or fixture scenario (JSON file)"
    )
    evaluate.add_argument(
        "--trace", action="store_true", help="add every fact, skipped result and rule, and why"
    )
    evaluate.add_argument(
        "--now",
        help="evaluate as of this ISO date or date-time (default: now; a scenario's own date)",
    )
    evaluate.add_argument(
        "--cards",
        type=Path,
        help="use this cards/ directory (default: CDS_CARDS_DIR, else the shipped cards/)",
    )
    evaluate.set_defaults(run=_evaluate)


def _add_check_command(commands: Any) -> None:
    check = _command(
        commands,
        "check-config",
        "validate a cards/ directory",
        "Validate a cards/ directory as the service does at start-up: every file, then every "
        "card text rendered for every state the rules produce; a problem is named with its "
        "file, field or template, and the reason. With a trust file, each overlay folder its "
        "profiles name is checked the same way, on top of the directory.",
    )
    check.add_argument(
        "directory",
        nargs="?",
        type=Path,
        help="the directory (default: CDS_CARDS_DIR, else the shipped cards/)",
    )
    check.add_argument(
        "--trust-file",
        type=Path,
        help="also check each overlay folder this trust file's profiles name, on top of the "
        "directory (default: CDS_TRUST_FILE, if set)",
    )
    check.set_defaults(run=_check_config)


def _add_report_command(commands: Any) -> None:
    report = _command(
        commands,
        "report",
        "shown/accepted/overridden per topic",
        "Cards shown, accepted and overridden per topic, with override reasons, from the "
        "service's database (CDS_DATABASE_URL). It never creates a database.",
    )
    report.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    report.add_argument(
        "--since", help="only cards and feedback since this ISO date (default: everything)"
    )
    view = report.add_mutually_exclusive_group()
    view.add_argument(
        "--export",
        choices=("csv", "json"),
        help="one row per card shown, with its outcome (keyed hashes, nothing identifying); "
        "(default: the per-topic report)",
    )
    view.add_argument(
        "--by-version",
        action="store_true",
        help="acceptance and override rates per content version (default: per topic only)",
    )
    report.set_defaults(run=_report)


def _add_docs_command(commands: Any) -> None:
    docs = _command(
        commands,
        "docs",
        "the topic pages as a static site, and the Markdown clinical reference",
        "Write each topic's page (what it does, when it fires with the live thresholds, what it "
        "advises, its sources and HTI-1 attributes) as a static site and/or as Markdown.",
    )
    docs.add_argument(
        "--out", type=Path, help="write index.html and topics/*.html here (default: not written)"
    )
    docs.add_argument(
        "--markdown",
        type=Path,
        help="write the clinical reference (Markdown) (default: not written)",
    )
    docs.add_argument(
        "--cards", type=Path, help="a cards/ directory (default: CDS_CARDS_DIR, else shipped)"
    )
    docs.set_defaults(run=_docs)


def _add_simulate_command(commands: Any) -> None:
    sim = _command(
        commands,
        "simulate",
        "run the service over a FHIR Bulk Data export: how often each card would fire",
        "Run the service over a FHIR Bulk Data export (NDJSON, optionally gzipped) and measure "
        "how often each topic would fire: a patient-view per patient at --at, and every order "
        "authored since --since replayed as a draft at its authoredOn.",
    )
    sim.add_argument("population", type=Path, help="a folder of *.ndjson or *.ndjson.gz files")
    sim.add_argument(
        "--at",
        metavar="DATE",
        help="when the charts are opened (ISO; a date: its end) (default: now)",
    )
    sim.add_argument(
        "--since",
        metavar="DATE",
        help="replay the orders authored from this ISO date (default: a year before --at)",
    )
    sim.add_argument(
        "--hooks",
        default=",".join(("patient-view", "order-select", "order-sign")),
        help="the hooks to simulate, comma-separated",
    )
    sim.add_argument(
        "--cards",
        type=Path,
        metavar="DIR",
        help="a cards/ directory (default: CDS_CARDS_DIR, else the shipped cards/)",
    )
    sim.add_argument(
        "--compare",
        type=Path,
        metavar="OTHER_CARDS_DIR",
        help="another cards/, side by side (default: none)",
    )
    sim.add_argument(
        "--out", type=Path, default=Path("simulation"), metavar="DIR", help="output folder"
    )
    sim.add_argument("--workers", type=int, default=1, metavar="N", help="processes")
    sim.add_argument("--detail", action="store_true", help="cards.ndjson carries each detail")
    sim.set_defaults(run=_simulate)


def _add_demo_command(commands: Any) -> None:
    demo = _command(
        commands,
        "demo",
        "auth off + demo FHIR test double at /demo/fhir, for the CDS Hooks sandbox",
        "Run the service with authentication off and the demo FHIR test double at /demo/fhir, "
        "and print one CDS Hooks sandbox URL per demo patient. Development only.",
    )
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on")
    demo.add_argument("--port", type=_port, default=8080, help="TCP port")
    demo.set_defaults(run=_demo)


def _add_load_command(commands: Any) -> None:
    load = _command(
        commands,
        "load-fixtures",
        "PUT the demo patients into a FHIR server",
        "Load the demo patients into a FHIR server (one transaction per patient).",
    )
    load.add_argument(
        "--fhir", required=True, help="the FHIR server's base URL (required; no default)"
    )
    load.set_defaults(run=_load_fixtures)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cds-service",
        description="The magnesium safety CDS Hooks service: serve it, evaluate a request "
        "offline, check the content in cards/, report on cards and feedback, or try it in the "
        "CDS Hooks sandbox. Settings are CDS_* environment variables or a .env file; "
        "`cds-service COMMAND --help` describes each command.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}", help="print the version"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_serve_command(commands)
    _add_evaluate_command(commands)
    _add_check_command(commands)
    _add_report_command(commands)
    _add_docs_command(commands)
    _add_simulate_command(commands)
    _add_demo_command(commands)
    _add_load_command(commands)
    return parser


def _report_error(exc: ConfigurationError) -> None:
    first, *rest = str(exc).splitlines() or [type(exc).__name__]
    print(f"cds-service: error: {first}", file=sys.stderr)
    for line in rest:
        print(f"  {line}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigurationError as exc:
        _report_error(exc)
        return CONFIGURATION_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
