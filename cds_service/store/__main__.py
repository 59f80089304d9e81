"""Schema commands without an alembic.ini: ``python -m cds_service.store upgrade|current|revision``.

The database is ``CDS_DATABASE_URL`` (or ``--url``). ``revision --autogenerate`` compares the
database with ``_schema.py`` and writes a new file under ``migrations/versions``.
"""

from __future__ import annotations

import argparse
import sys

from alembic import command

from ..errors import ConfigurationError
from ._engine import connect
from ._migrate import alembic_config, current_revision, upgrade


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cds_service.store")
    parser.add_argument("--url", help="database URL (default: CDS_DATABASE_URL)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("upgrade", help="migrate to the latest revision")
    commands.add_parser("current", help="print the database's revision")
    revision = commands.add_parser("revision", help="write a new migration file")
    revision.add_argument("-m", "--message", required=True)
    revision.add_argument("--rev-id", help="revision id (default: generated)")
    revision.add_argument("--autogenerate", action="store_true")
    args = parser.parse_args(argv)

    if args.url is None:
        from ..settings import load_settings

        args.url = load_settings().database_url
    database = connect(args.url)
    try:
        if args.command == "upgrade":
            upgrade(database)
        if args.command in {"upgrade", "current"}:
            print(current_revision(database) or "(empty database)")
            return 0
        with database.write() as connection:
            command.revision(
                alembic_config(connection),
                message=args.message,
                autogenerate=args.autogenerate,
                rev_id=args.rev_id,
            )
        return 0
    finally:
        database.engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
