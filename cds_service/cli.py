"""``cds-service``: serve, evaluate a request offline, check the content, report, demo."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from .content import ContentError, load_content


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run(
        "cds_service.bootstrap:build_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
        http="httptools",
        loop="uvloop",
    )
    return 0


def _parse_now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise SystemExit(f"error: {value!r} is not an ISO date or date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _load_request(path: Path) -> tuple[Any, datetime | None]:
    """A CDS Hooks request, or a fixture scenario (whose dates are shifted to today)."""
    from .scenarios import is_scenario, load_scenario

    payload = orjson.loads(path.read_bytes())
    if is_scenario(payload):
        scenario = load_scenario(path)
        return scenario.request, scenario.now
    return payload, None


def _evaluate(args: argparse.Namespace) -> int:
    from .engine import trace
    from .gathering import RequestsFhirClient
    from .pipeline import CdsService
    from .protocol import SERVICES, ServiceError
    from .settings import Settings

    settings = Settings()
    content = load_content(args.cards or settings.cards_dir)
    payload, scenario_now = _load_request(args.request)
    now = _parse_now(args.now) or scenario_now
    service = CdsService(
        settings=settings,
        content=content,
        store=None,
        fhir_client=RequestsFhirClient(),
        **({"clock": lambda: now} if now else {}),
    )
    hook = payload.get("hook") if isinstance(payload, dict) else None
    service_id = next((s.id for s in SERVICES.values() if s.hook == hook), None)
    if service_id is None:
        print(f"error: unknown or missing hook {hook!r}", file=sys.stderr)
        return 2
    try:
        result = service.hook(service_id, payload)
    except ServiceError as exc:
        sys.stdout.buffer.write(orjson.dumps(exc.outcome(), option=orjson.OPT_INDENT_2) + b"\n")
        return 1
    output: dict[str, Any] = dict(result.response)
    if args.trace:
        output["trace"] = trace(result.evaluation)
    sys.stdout.buffer.write(orjson.dumps(output, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from .settings import Settings

    directory = args.directory or Settings().cards_dir
    try:
        content = load_content(directory)
    except ContentError as exc:
        print(f"cards/ is invalid: {exc}", file=sys.stderr)
        return 1
    print(f"{directory}: OK ({len(content.topics)} topics, {len(content.analytes)} analytes)")
    return 0


def _report(args: argparse.Namespace) -> int:
    from .settings import Settings
    from .store import Store, format_report_text

    settings = Settings()
    store = Store.open(settings.database_url)
    try:
        report = store.report(since=_parse_now(args.since))
    finally:
        store.close()
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(format_report_text(report))
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
    from .settings import Settings
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
    settings = Settings()
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
    from .demo import run_demo

    return run_demo(args.host, args.port)


def _load_fixtures(args: argparse.Namespace) -> int:
    from .demo import load_fixtures

    return load_fixtures(args.fhir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cds-service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service (uvicorn)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(run=_serve)

    evaluate = commands.add_parser("evaluate", help="run one CDS Hooks request offline")
    evaluate.add_argument("request", type=Path, help="a CDS Hooks request or fixture scenario")
    evaluate.add_argument("--trace", action="store_true", help="show every fact and rule")
    evaluate.add_argument("--now", help="evaluate as of this ISO date-time (default: now)")
    evaluate.add_argument("--cards", type=Path, help="a cards/ directory (default: settings)")
    evaluate.set_defaults(run=_evaluate)

    check = commands.add_parser("check-config", help="validate a cards/ directory")
    check.add_argument("directory", nargs="?", type=Path)
    check.set_defaults(run=_check_config)

    report = commands.add_parser("report", help="shown/accepted/overridden per topic")
    report.add_argument("--format", choices=("text", "json"), default="text")
    report.add_argument("--since", help="only cards and feedback since this ISO date")
    report.set_defaults(run=_report)

    sim = commands.add_parser(
        "simulate",
        help="run the service over a FHIR Bulk Data export: how often each card would fire",
        description="Run the service over a FHIR Bulk Data export (NDJSON, optionally gzipped) "
        "and measure how often each topic would fire: a patient-view per patient at --at, and "
        "every order authored since --since replayed as a draft at its authoredOn.",
    )
    sim.add_argument("population", type=Path, help="a folder of *.ndjson or *.ndjson.gz files")
    sim.add_argument(
        "--at",
        metavar="DATE",
        help="when the charts are opened (ISO; a date: its end; default now)",
    )
    sim.add_argument(
        "--since",
        metavar="DATE",
        help="replay the orders authored from this ISO date (default: a year before --at)",
    )
    sim.add_argument(
        "--hooks",
        default=",".join(("patient-view", "order-select", "order-sign")),
        help="the hooks to simulate, comma-separated (default: all three)",
    )
    sim.add_argument(
        "--cards", type=Path, metavar="DIR", help="a cards/ directory (default: settings)"
    )
    sim.add_argument(
        "--compare", type=Path, metavar="OTHER_CARDS_DIR", help="another cards/, side by side"
    )
    sim.add_argument(
        "--out", type=Path, default=Path("simulation"), metavar="DIR", help="(default simulation/)"
    )
    sim.add_argument("--workers", type=int, default=1, metavar="N", help="processes (default 1)")
    sim.add_argument("--detail", action="store_true", help="cards.ndjson carries each detail")
    sim.set_defaults(run=_simulate)

    demo = commands.add_parser(
        "demo", help="auth off + demo FHIR test double at /demo/fhir, for the CDS Hooks sandbox"
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.set_defaults(run=_demo)

    load = commands.add_parser("load-fixtures", help="PUT the demo patients into a FHIR server")
    load.add_argument("--fhir", required=True, help="the FHIR server's base URL")
    load.set_defaults(run=_load_fixtures)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
