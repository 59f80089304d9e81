"""Runtime settings: ``CDS_``-prefixed environment variables or a ``.env`` file."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigurationError, env_name, is_secret_setting

SHIPPED_CARDS_DIR = Path(__file__).resolve().parent.parent / "cards"


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


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
    log_level: str = Field(
        default="INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL, for every logger"
    )
    patient_hash_key: str = Field(
        default="", description="secret for the keyed hash that correlates patients in logs"
    )
    audit_retention_days: int | None = Field(default=400, ge=1)
    # FHIR fetches
    fhir_host_concurrency: int = Field(
        default=16, ge=1, le=128, description="fetches at once to one FHIR server, per worker"
    )
    # JWT
    jwt_require_typ: bool = Field(default=True, description="refuse tokens without typ: JWT")
    jwt_max_lifetime_s: float = Field(
        default=3600, gt=0, le=86400, description="longest accepted exp - iat of a token"
    )
    # The HTTP server (``cds-service serve`` and ``demo``)
    access_log: bool = Field(default=False, description="one line per request, no query string")
    max_header_kb: int = Field(default=32, ge=4, le=1024, description="request line + headers")
    header_timeout_s: float = Field(default=10, gt=0, le=300)
    body_timeout_s: float = Field(default=30, gt=0, le=3600)
    max_connections: int | None = Field(
        default=None, ge=1, description="per worker; default half the open-file limit, ≤ 1000"
    )
    demo_fhir: bool = Field(
        default=False,
        description="mount the demo FHIR test double at /demo/fhir (cds-service demo sets it); "
        "never when auth is on",
    )

    @field_validator("public_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError("use one of " + ", ".join(LOG_LEVELS))
        return level

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
        """Whether the demo FHIR test double is mounted: only when asked for, never with auth on."""
        return auth_off and self.demo_fhir

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


def load_settings() -> Settings:
    """The settings from the environment and ``.env``; a bad value is a ``ConfigurationError``
    naming the variable, the value (unless it is a secret) and what is accepted."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        location = error.get("loc") or ("?",)
        field = str(location[0])
        reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        value = error.get("input")
        shown = "" if is_secret_setting(field) or isinstance(value, dict) else f"={value!r}"
        lines.append(f"{env_name(field)}{shown} is not valid: {reason}")
    return "\n".join(lines)
