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
    from .server import run

    run(host=args.host, port=args.port, workers=args.workers)
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
    from .gathering import HttpFhirClient
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
        fhir_client=HttpFhirClient(),
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


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args.host, args.port)


def _load_fixtures(args: argparse.Namespace) -> int:
    from .demo import load_fixtures

    return load_fixtures(args.fhir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cds-service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", help="run the HTTP service (uvicorn, with limits on slow and huge clients)"
    )
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
