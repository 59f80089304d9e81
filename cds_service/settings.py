"""Runtime settings: ``CDS_``-prefixed environment variables or a ``.env`` file."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SHIPPED_CARDS_DIR = Path(__file__).resolve().parent.parent / "cards"


class AuthMode(StrEnum):
    OFF = "off"
    JWT = "jwt"


class Settings(BaseSettings):
    """Everything an operator sets per deployment; clinical content lives in ``cards/``."""

    model_config = SettingsConfigDict(env_prefix="CDS_", env_file=".env", extra="ignore")

    public_base_url: str = "http://localhost:8080"
    auth_mode: AuthMode | None = Field(
        default=None, description="off or jwt; jwt is the default when a trust file is given"
    )
    trust_file: Path | None = None
    cors_origins: list[str] | None = Field(
        default=None, description="allowed origins; default none under jwt, * under off"
    )
    database_url: str = "sqlite:///var/cds-service.sqlite3"
    cards_dir: Path = SHIPPED_CARDS_DIR
    fhir_timeout_s: float = Field(default=2.0, gt=0, le=60)
    fhir_page_cap: int = Field(default=20, ge=1, le=1000)
    max_body_mb: float = Field(default=32, gt=0)
    max_draft_orders: int = Field(default=200, ge=1)
    max_prefetch_entries: int = Field(default=20_000, ge=1)
    log_level: str = "INFO"
    patient_hash_key: str = Field(
        default="", description="secret for the keyed hash that correlates patients in logs"
    )
    audit_retention_days: int | None = Field(default=400, ge=1)
    demo_fhir: bool | None = Field(
        default=None,
        description="mount the demo FHIR test double at /demo/fhir; default on when auth is off, "
        "never when auth is on",
    )

    @field_validator("public_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip().startswith("["):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @property
    def effective_auth_mode(self) -> AuthMode:
        if self.auth_mode is not None:
            return self.auth_mode
        return AuthMode.JWT if self.trust_file is not None else AuthMode.OFF

    def cors_origins_for(self, *, auth_off: bool) -> list[str]:
        """The allowed origins; the default follows the auth mode: "*" when off, none under jwt."""
        if self.cors_origins is not None:
            return self.cors_origins
        return ["*"] if auth_off else []

    def demo_fhir_for(self, *, auth_off: bool) -> bool:
        """Whether the demo FHIR test double is mounted: never with auth on."""
        if not auth_off:
            return False
        return True if self.demo_fhir is None else self.demo_fhir

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)
