"""The retry policy of the service's defaults (services/settings.py HTTP_RETRY_*), for tests that
build a client or a policy without a whole `Settings`."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from services.http.retry import RetryPolicy
from services.settings import Settings

RETRY_SETTINGS: dict[str, Any] = {
    name: field.default for name, field in Settings.model_fields.items() if name.startswith("HTTP_RETRY_")
}


def default_retry(**changes: Any) -> RetryPolicy:
    """The policy a client builds from the default settings, with `changes` (sleep, clock, ...)."""
    return replace(RetryPolicy.from_settings(SimpleNamespace(**RETRY_SETTINGS)), **changes)
