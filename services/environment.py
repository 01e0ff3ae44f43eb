"""The one reader of the service's environment: a variable set in the process environment wins
over the same name in `.env` (the working directory's); names are case-sensitive.

`Settings` (services/settings.py) validates what is read here: this is its only source
(`EnvironmentSource`), so there is one reading of the environment and one set of rules. The
webhook intake cannot wait for pydantic: EspoCRM waits for the answer, every request is a fresh
Python process, and importing pydantic and pydantic-settings alone costs ~170 ms of a ~280 ms
answer on a 2-core machine. So it reads its two values here directly (`webhook_secrets`,
`redis_url`) and checks them with the same functions `Settings` validates them with. Nothing
here imports pydantic.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from services.errors import ConfigurationError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
ENV_FILE = ".env"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

Environment = Mapping[str, str | None]


def read_environment(env_file: str | Path | None = ENV_FILE) -> dict[str, str | None]:
    """The process environment over `env_file`'s values (None or a missing file: the process
    environment alone)."""
    values: dict[str, str | None] = {}
    if env_file is not None and os.path.isfile(env_file):
        from dotenv import dotenv_values  # what pydantic-settings reads `.env` with

        values.update(dotenv_values(env_file, encoding="utf-8"))
    values.update(os.environ)
    return values


def parse_webhook_secrets(value: str) -> dict[str, str]:
    """ "webhookId:secretKey,webhookId:secretKey" -> {webhookId: secretKey}. Raises ValueError."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected comma-separated webhookId:secretKey pairs")
    pairs: dict[str, str] = {}
    for chunk in value.split(","):
        chunk = chunk.strip()
        if not chunk:
            continue
        webhook_id, sep, secret = chunk.partition(":")
        if not sep or not webhook_id.strip() or not secret.strip():
            raise ValueError("each entry must be webhookId:secretKey")
        pairs[webhook_id.strip()] = secret.strip()
    if not pairs:
        raise ValueError("expected at least one webhookId:secretKey pair")
    return pairs


def check_redis_url(value: str) -> str:
    if not value.startswith(REDIS_SCHEMES):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return value


def webhook_secrets(env: Environment) -> dict[str, str]:
    """ESPOCRM_WEBHOOK_SECRETS for the intake, or ConfigurationError as `load_settings` words it."""
    raw = env.get("ESPOCRM_WEBHOOK_SECRETS")
    if raw is None:
        raise ConfigurationError("configuration error: ESPOCRM_WEBHOOK_SECRETS is missing")
    try:
        return parse_webhook_secrets(raw)
    except ValueError as exc:
        raise ConfigurationError(f"configuration error: ESPOCRM_WEBHOOK_SECRETS is invalid: {exc}") from None


def redis_url(env: Environment) -> str:
    """REDIS_URL for the intake (the default when unset), or ConfigurationError."""
    url = env.get("REDIS_URL")
    try:
        return check_redis_url(DEFAULT_REDIS_URL if url is None else url)
    except ValueError as exc:
        raise ConfigurationError(f"configuration error: REDIS_URL is invalid: {exc}") from None
