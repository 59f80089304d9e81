"""``cds-service``: serve, evaluate a request offline, check the content, report, demo."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from .content import ContentError
from .profile import load_site_content


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .checks import checked_content
    from .settings import Settings

    # Checked here once, so a failing content check stops the service before any worker starts
    # (each worker checks again as it builds the app).
    try:
        checked_content(Settings().cards_dir)
    except ContentError as exc:
        print(f"cards/ is invalid: {exc}\nThe service does not start.", file=sys.stderr)
        return 1
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
    content = load_site_content(args.cards or settings.cards_dir)
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
    from .checks import checked_content
    from .settings import Settings

    directory = args.directory or Settings().cards_dir
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
    return 0


def _export(store: Any, export: str, since: datetime | None) -> None:
    """Stream the governance export to stdout: CSV, or ``{"cards": [...]}``."""
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
    from .settings import Settings
    from .store import Store, format_by_version_text, format_report_text

    settings = Settings()
    since = _parse_now(args.since)
    store = Store.open(settings.database_url)
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
    from .settings import Settings

    if args.out is None and args.markdown is None:
        print("error: give --out DIR, --markdown FILE, or both", file=sys.stderr)
        return 2
    directory = args.cards or Settings().cards_dir
    try:
        content = load_site_content(directory)
    except ContentError as exc:
        print(f"cards/ is invalid: {exc}", file=sys.stderr)
        return 1
    version = content.governance.version.version
    if args.out is not None:
        written = write_site(content, args.out)
        print(f"{args.out}: {len(written)} pages (content version {version})")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(reference_markdown(topic_pages(content)), encoding="utf-8")
        print(f"{args.markdown}: written (content version {version})")
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
    view = report.add_mutually_exclusive_group()
    view.add_argument(
        "--export",
        choices=("csv", "json"),
        help="one row per card shown, with its outcome (keyed hashes, nothing identifying)",
    )
    view.add_argument(
        "--by-version",
        action="store_true",
        help="acceptance and override rates per content version",
    )
    report.set_defaults(run=_report)

    docs = commands.add_parser(
        "docs", help="the topic pages as a static site, and the Markdown clinical reference"
    )
    docs.add_argument("--out", type=Path, help="write index.html and topics/*.html here")
    docs.add_argument("--markdown", type=Path, help="write the clinical reference (Markdown)")
    docs.add_argument("--cards", type=Path, help="a cards/ directory (default: settings)")
    docs.set_defaults(run=_docs)

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
