"""`python -m sandbox`: start the EspoCRM and Advoware simulators (see sandbox/README.md)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from sandbox.config import (
    ADVO_PORT,
    ESPO_PORT,
    HOST,
    WEBHOOK_BASE,
    SandboxConfig,
    render_env,
)


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


# Every option in --help order: (flag, type or SWITCH, environment variable or None, default, help).
SWITCH = "switch"
OPTIONS: list[tuple[str, Any, str | None, Any, str | None]] = [
    ("--host", str, "SANDBOX_HOST", HOST, "bind address (keep it 127.0.0.1)"),
    ("--espo-port", int, "SANDBOX_ESPO_PORT", ESPO_PORT, None),
    ("--advo-port", int, "SANDBOX_ADVO_PORT", ADVO_PORT, None),
    (
        "--webhook-base",
        str,
        "SANDBOX_WEBHOOK_BASE",
        WEBHOOK_BASE,
        "webhooks post to <base>/create|update|delete",
    ),
    ("--seed", int, "SANDBOX_SEED", 42, None),
    ("--records", int, "SANDBOX_RECORDS", 0, "extra synthetic linked pairs (benchmarks, e.g. 10000)"),
    ("--no-demo", SWITCH, None, None, "leave out the hand-made demo records"),
    ("--token-ttl", int, "SANDBOX_TOKEN_TTL", 3600, "Advoware token lifetime in seconds"),
    ("--latency-ms", int, "SANDBOX_LATENCY_MS", 0, "added to every API call on both simulators"),
    (
        "--webhook-retry-delay",
        float,
        "SANDBOX_WEBHOOK_RETRY_DELAY",
        1.0,
        "seconds between webhook delivery attempts (EspoCRM: 600)",
    ),
    (
        "--webhook-interval",
        float,
        "SANDBOX_WEBHOOK_INTERVAL",
        0.2,
        "seconds between webhook queue runs (EspoCRM: 120)",
    ),
    ("--webhook-timeout", float, None, 10.0, "sender timeout, seconds (408)"),
    ("--webhook-shuffle", SWITCH, None, None, "shuffle batch order (chaos)"),
    ("--no-webhooks", SWITCH, None, None, "do not pre-register the three webhooks"),
    (
        "--no-entity",
        SWITCH,
        None,
        None,
        "start without the CBeteiligte entity and its records (set it up with setup-espocrm)",
    ),
    ("--timezone", str, "SANDBOX_TIMEZONE", "Europe/Berlin", None),
    (
        "--advo-drift",
        str,
        "SANDBOX_ADVO_DRIFT",
        "",
        "Advoware modes to start in, comma-separated: frozen_stamp, pascal_case, utc_stamps, row_id,"
        " ignore_skip, records_404, listing_404 (sandbox/advoware_drift.py)",
    ),
    ("--log-level", str, "SANDBOX_LOG_LEVEL", "warning", None),
]
# Options that are SandboxConfig fields of the same name.
SAME_NAME = (
    "host",
    "espo_port",
    "advo_port",
    "webhook_base",
    "seed",
    "records",
    "token_ttl",
    "latency_ms",
    "webhook_retry_delay",
    "webhook_interval",
    "webhook_timeout",
    "webhook_shuffle",
    "log_level",
)


def _drift_modes(parser: argparse.ArgumentParser, text: str) -> dict[str, Any]:
    from sandbox.advoware_drift import Drift

    modes: dict[str, Any] = {name.strip(): True for name in text.split(",") if name.strip()}
    try:
        Drift().update(modes)
    except ValueError as exc:
        parser.error(f"--advo-drift: {exc}")
    return modes


def parse_args(argv: list[str] | None = None) -> SandboxConfig:
    p = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    for flag, kind, env, default, help_text in OPTIONS:
        if kind == SWITCH:
            p.add_argument(flag, action="store_true", help=help_text)
        else:
            value = default if env is None else kind(_env(env, str(default)))
            p.add_argument(flag, type=kind, default=value, help=help_text)
    p.add_argument("--write-env", metavar="PATH", help="write the service dotenv for these ports and exit")
    a = p.parse_args(argv)
    options = vars(a)
    config = SandboxConfig(
        **{name: options[name] for name in SAME_NAME},
        demo=not a.no_demo,
        webhooks_enabled=not a.no_webhooks,
        entity_enabled=not a.no_entity,
        advo_timezone=a.timezone,
        advo_drift=_drift_modes(p, a.advo_drift),
    )
    if a.write_env:
        Path(a.write_env).write_text(render_env(config), encoding="utf-8")
        sys.exit(0)
    return config


def main(argv: list[str] | None = None) -> None:
    from sandbox.server import run_forever

    run_forever(parse_args(argv))


if __name__ == "__main__":
    main()
