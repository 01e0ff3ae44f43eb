"""The composition root (services/runtime.py) around the in-memory fakes: tests get the same
wiring the service uses, with `Settings`' own defaults (the one source) plus overrides."""

from __future__ import annotations

from typing import Any

from services.runtime import Runtime, build_runtime
from services.settings import Settings
from tests.support.fakes import Clock


def settings_with(**overrides: Any) -> Settings:
    """`Settings` with its declared defaults and `overrides`; reads no environment, validates
    nothing (the required connection settings stay unset: the fakes need none; no webhook
    secrets, which the EspoCRM set-up check of the health report reads)."""
    return Settings.model_construct(**{"ESPOCRM_WEBHOOK_SECRETS": {}, **overrides})


def fake_runtime(espo: Any, advo: Any, redis: Any, clock: Clock, **overrides: Any) -> Runtime:
    """A Runtime whose clients are fakes and whose time is `clock`."""
    return build_runtime(
        settings_with(**overrides), espo=espo, advo=advo, redis=redis, clock=lambda: clock.now
    )
