"""Settings: every variable the service reads, its default and its rules, validated at once.

What is validated is read by services/environment.py (the process environment over an optional
`.env`), this model's only source; the webhook intake reads its two values there directly,
without pydantic. Every variable is documented in `.env.example` and the README's table. `load_settings()` turns pydantic's
validation report into one `ConfigurationError` whose message names each bad variable,
so start-up fails fast and says what to fix (`python -m services.settings` is the check
`make serve` runs before starting Motia).
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from services.environment import (
    DEFAULT_REDIS_URL,
    ENV_FILE,
    check_redis_url,
    parse_webhook_secrets,
    read_environment,
)
from services.errors import ConfigurationError

WORKBENCH_PASSWORD_MIN = 12

if TYPE_CHECKING:
    from pathlib import Path

    from services.beteiligte.fieldmap import Direction


def http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value


class EnvironmentSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading through services/environment.py (the
    process environment over `.env`) instead of its own two readers."""

    def __init__(self, settings_cls: type[BaseSettings], env_file: str | Path | None) -> None:
        self._env_file = env_file
        super().__init__(settings_cls)

    def _load_env_vars(self) -> dict[str, str | None]:
        return read_environment(self._env_file)


class FromEnvironment(BaseSettings):
    """Settings read through services/environment.py only (`_env_file=None`: without `.env`)."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore", case_sensitive=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # EnvironmentSource replaces pydantic-settings' environment and `.env` readers; no
        # secrets directory is read.
        del env_settings, file_secret_settings
        env_file = getattr(dotenv_settings, "env_file", ENV_FILE)  # the `_env_file` a caller gave
        return init_settings, EnvironmentSource(settings_cls, env_file if isinstance(env_file, str) else None)


class Settings(FromEnvironment):
    # --- EspoCRM -------------------------------------------------------------------
    ESPOCRM_API_BASE_URL: str = Field(description="e.g. https://crm.example.de/api/v1")
    ESPOCRM_API_KEY: SecretStr
    # Optional HMAC auth: when set, requests carry X-Hmac-Authorization instead of X-Api-Key.
    ESPOCRM_API_SECRET: SecretStr | None = None
    # "webhookId:secretKey,webhookId:secretKey" - several may be active during rotation.
    ESPOCRM_WEBHOOK_SECRETS: Annotated[dict[str, SecretStr], NoDecode]
    ESPOCRM_NOTIFY_USER_ID: str | None = None
    # Optional override of that user's userName for the @mention (normally looked up via GET /User/{id}).
    ESPOCRM_NOTIFY_USER_NAME: str | None = None
    # The service's public base URL as EspoCRM reaches it (what `setup-espocrm --url` was given):
    # the start-up check expects the webhooks at <it>/vmh/webhook/beteiligte/<event>. Unset: it
    # checks the path only.
    SYNC_PUBLIC_URL: str | None = None

    # --- Advoware ------------------------------------------------------------------
    ADVOWARE_API_BASE_URL: str
    ADVOWARE_SECURITY_URL: str
    ADVOWARE_PRODUCT_ID: int = 64
    ADVOWARE_APP_ID: str
    ADVOWARE_API_KEY: SecretStr
    ADVOWARE_KANZLEI: str
    ADVOWARE_DATABASE: str
    ADVOWARE_USER: str
    ADVOWARE_ROLE: int = 2
    ADVOWARE_PASSWORD: SecretStr
    ADVOWARE_TIMEZONE: str = "Europe/Berlin"
    # The firm's on-prem connector is slow: cap in-flight calls across all workers.
    ADVOWARE_MAX_CONCURRENCY: int = Field(default=4, ge=1, le=64)

    # --- Service -------------------------------------------------------------------
    REDIS_URL: str = DEFAULT_REDIS_URL
    SYNC_ADMIN_TOKEN: SecretStr
    # The one HTTP port (make serve opens no second one) and the address it is bound to.
    PORT: int = Field(default=3000, ge=1, le=65535)
    HOST: str = "127.0.0.1"
    # Login of the Workbench on that port (HTTP Basic). Both or neither: without them the
    # Workbench is not served in `make serve` (only the webhook and ops routes answer).
    WORKBENCH_USER: str | None = None
    WORKBENCH_PASSWORD: SecretStr | None = Field(default=None, validate_default=True)
    # Attempts before a record becomes permanently_failed.
    SYNC_MAX_ATTEMPTS: int = Field(default=8, ge=1, le=100)
    # HTTP timeout per call, seconds.
    HTTP_TIMEOUT_SECONDS: float = Field(default=15.0, gt=0, le=120)
    # Per-record lock lifetime, seconds. The holder renews it while it works, so this only
    # bounds how long a crashed worker blocks its record.
    SYNC_LOCK_TTL_SECONDS: float = Field(default=120.0, ge=3, le=3600)
    # A record left in `syncing` this long (its worker died) is picked up again by the sweep.
    SYNC_STALE_SYNCING_SECONDS: float = Field(default=300.0, ge=1, le=86400)
    # Back-off of `failed` records: base * 2**(attempts-1), capped at 6 h.
    SYNC_RETRY_BASE_SECONDS: float = Field(default=600.0, gt=0, le=86400)
    # Bulk-404 breaker: more than this share of the records checked since the sweep (and at
    # least SYNC_DELETION_BREAKER_MIN of them) answering 404 holds all deletions for a person.
    SYNC_DELETION_BREAKER_SHARE: float = Field(default=0.2, gt=0, le=1)
    SYNC_DELETION_BREAKER_MIN: int = Field(default=5, ge=1, le=100000)
    # One complete Advoware listing this often, seconds: deleted parties, and edits whose
    # geaendertAm did not show them (each linked row compared with its snapshot).
    SYNC_DELETION_SCAN_SECONDS: float = Field(default=3600.0, ge=60, le=7 * 86400)
    # The Advoware record is read again right before a full-replace PUT when the sync's first
    # read is older than this (a person's Advoware edit in between is then not overwritten).
    SYNC_ADVOWARE_REREAD_SECONDS: float = Field(default=2.0, ge=0, le=300)

    # --- Operations ------------------------------------------------------------------
    # Decisions kept per record (`history`), and for how long.
    SYNC_HISTORY_LIMIT: int = Field(default=50, ge=1, le=1000)
    SYNC_HISTORY_MAX_AGE_DAYS: int = Field(default=90, ge=1, le=3650)
    # A system unreachable or refusing credentials this long gets one alert notice (and one at its end).
    ALERT_AFTER_SECONDS: float = Field(default=1800.0, ge=0, le=7 * 86400)
    # No completed sweep for this long (two cron intervals of 15 min) is unhealthy and alerted.
    ALERT_SWEEP_OVERDUE_SECONDS: float = Field(default=1800.0, ge=60, le=7 * 86400)
    # Per-field direction overrides, e.g. "geburtsdatum:advoware,titel:both" (fields by canonical or
    # EspoCRM name; both | espocrm (EspoCRM -> Advoware only) | advoware (Advoware -> EspoCRM only) | none).
    SYNC_FIELD_DIRECTIONS: str = ""

    # --- The retry policy of every API call (services/http/retry.py) ----------------
    # Attempts of a call that failed transiently, of one provably never carried out (connect
    # failed, connector offline), the back-off's first and longest wait, and the budget of all
    # tries of one call.
    HTTP_RETRY_MAX_ATTEMPTS: int = Field(default=4, ge=1, le=20)
    HTTP_RETRY_UNSENT_ATTEMPTS: int = Field(default=6, ge=1, le=50)
    HTTP_RETRY_BASE_DELAY_SECONDS: float = Field(default=0.5, gt=0, le=60)
    HTTP_RETRY_MAX_DELAY_SECONDS: float = Field(default=30.0, gt=0, le=600)
    HTTP_RETRY_TOTAL_SECONDS: float = Field(default=60.0, gt=0, le=3600)

    @field_validator("SYNC_FIELD_DIRECTIONS")
    @classmethod
    def _valid_directions(cls, value: str) -> str:
        from services.beteiligte.fieldmap import parse_directions

        parse_directions(value)  # raises ValueError naming the bad entry
        return value

    @field_validator("ESPOCRM_WEBHOOK_SECRETS", mode="before")
    @classmethod
    def _parse_webhook_secrets(cls, value: object) -> object:
        if isinstance(value, dict):
            return value
        # One parser for this and the webhook intake's pydantic-free reader.
        return parse_webhook_secrets(value)  # type: ignore[arg-type]

    @field_validator("ADVOWARE_TIMEZONE")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("ESPOCRM_API_BASE_URL", "ADVOWARE_API_BASE_URL", "ADVOWARE_SECURITY_URL")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("SYNC_PUBLIC_URL")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return http_url(value) if value else None

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        return check_redis_url(value)  # the intake's check too

    @field_validator("WORKBENCH_PASSWORD")
    @classmethod
    def _workbench_login(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        password = value.get_secret_value() if value is not None else ""
        if bool(password) != bool(info.data.get("WORKBENCH_USER")):
            raise ValueError("WORKBENCH_USER and WORKBENCH_PASSWORD are set together, or neither")
        if password and len(password) < WORKBENCH_PASSWORD_MIN:
            raise ValueError(f"must be at least {WORKBENCH_PASSWORD_MIN} characters")
        return value

    @property
    def field_directions(self) -> dict[str, Direction]:
        """Every canonical field's direction: the field map's, with the overrides applied."""
        from services.beteiligte.fieldmap import effective_directions, parse_directions

        return effective_directions(parse_directions(self.SYNC_FIELD_DIRECTIONS))

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.ADVOWARE_TIMEZONE)

    def webhook_secret(self, webhook_id: str) -> str | None:
        secret = self.ESPOCRM_WEBHOOK_SECRETS.get(webhook_id)
        return secret.get_secret_value() if secret is not None else None


class SetupSettings(FromEnvironment):
    """What `python -m services.ops setup-espocrm` reads: the API user (the webhooks are its own)
    and, optionally, an admin's login. Nothing else is needed on day one: the webhook secrets
    are what it prints. The admin's password is used for the one run and never written anywhere."""

    ESPOCRM_API_BASE_URL: str
    ESPOCRM_API_KEY: SecretStr
    ESPOCRM_API_SECRET: SecretStr | None = None
    ESPOCRM_ADMIN_USER: str | None = None
    ESPOCRM_ADMIN_PASSWORD: SecretStr | None = None
    HTTP_TIMEOUT_SECONDS: float = Settings.model_fields["HTTP_TIMEOUT_SECONDS"].default
    HTTP_RETRY_MAX_ATTEMPTS: int = Settings.model_fields["HTTP_RETRY_MAX_ATTEMPTS"].default
    HTTP_RETRY_UNSENT_ATTEMPTS: int = Settings.model_fields["HTTP_RETRY_UNSENT_ATTEMPTS"].default
    HTTP_RETRY_BASE_DELAY_SECONDS: float = Settings.model_fields["HTTP_RETRY_BASE_DELAY_SECONDS"].default
    HTTP_RETRY_MAX_DELAY_SECONDS: float = Settings.model_fields["HTTP_RETRY_MAX_DELAY_SECONDS"].default
    HTTP_RETRY_TOTAL_SECONDS: float = Settings.model_fields["HTTP_RETRY_TOTAL_SECONDS"].default

    @field_validator("ESPOCRM_API_BASE_URL")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value)


def load_setup_settings() -> SetupSettings:
    """The setup command's settings, or one ConfigurationError naming each bad variable."""
    try:
        return SetupSettings()  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigurationError(_problems(exc)) from None


def _problems(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        name = ".".join(str(part) for part in err["loc"]) or "?"
        kind = "missing" if err["type"] == "missing" else "invalid"
        detail = "" if kind == "missing" else f": {err['msg']}"
        problems.append(f"{name} is {kind}{detail}")
    return "configuration error: " + "; ".join(problems)


def load_settings() -> Settings:
    """Read and validate the settings, or raise one ConfigurationError naming each bad variable."""
    try:
        return Settings()  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigurationError(_problems(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for this process (each Motia step execution is its own process)."""
    return load_settings()


def main() -> int:
    """The start-up check of `make serve`: the configuration, then the Redis server it names
    (services/store/server_check.py). Exit 2: bad configuration, 3: Redis unusable."""
    import asyncio

    from services.store.server_check import check_url

    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    findings = asyncio.run(check_url(settings.REDIS_URL))
    for finding in findings:
        print(f"redis {finding.level}: {finding.message}", file=sys.stderr)
    if any(f.level == "error" for f in findings):
        return 3
    print("configuration ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
