"""Alembic environment: see cds_service.store._migrate.run_env."""

from cds_service.store._migrate import run_env

run_env()
