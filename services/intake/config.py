"""The two settings the webhook intake needs, read without pydantic.

EspoCRM waits for the webhook's answer, and every request is a fresh Python process: building
the full `Settings` (pydantic + pydantic-settings) costs ~130 ms of a ~280 ms answer. The intake
only needs the webhook secrets and the Redis URL, so it reads those two the way `Settings` does
(an environment variable wins over `.env` in the working directory; names are case-sensitive)
and parses the secrets with the same function. Every other step, and `make serve`'s start-up
check, still validates the whole configuration through `services.settings`.
"""

from __future__ import annotations

import os
from functools import lru_cache

from services.errors import ConfigurationError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
ENV_FILE = ".env"


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


@lru_cache(maxsize=1)
def _dotenv() -> dict[str, str | None]:
    if not os.path.isfile(ENV_FILE):
        return {}
    from dotenv import dotenv_values  # what pydantic-settings reads `.env` with

    return dict(dotenv_values(ENV_FILE, encoding="utf-8"))


def _value(name: str) -> str | None:
    if name in os.environ:
        return os.environ[name]
    return _dotenv().get(name)


def webhook_secrets() -> dict[str, str]:
    raw = _value("ESPOCRM_WEBHOOK_SECRETS")
    if raw is None:
        raise ConfigurationError("configuration error: ESPOCRM_WEBHOOK_SECRETS is missing")
    try:
        return parse_webhook_secrets(raw)
    except ValueError as exc:
        raise ConfigurationError(f"configuration error: ESPOCRM_WEBHOOK_SECRETS is invalid: {exc}") from None


def redis_url() -> str:
    url = _value("REDIS_URL")
    if url is None:
        url = DEFAULT_REDIS_URL
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(
            "configuration error: REDIS_URL is invalid: must start with redis://, rediss:// or unix://"
        )
    return url
