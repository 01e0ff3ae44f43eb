"""`python -m sandbox`: start the EspoCRM and Advoware simulators (see sandbox/README.md)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

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


def parse_args(argv: list[str] | None = None) -> SandboxConfig:
    p = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    p.add_argument("--host", default=_env("SANDBOX_HOST", HOST), help="bind address (keep it 127.0.0.1)")
    p.add_argument("--espo-port", type=int, default=int(_env("SANDBOX_ESPO_PORT", str(ESPO_PORT))))
    p.add_argument("--advo-port", type=int, default=int(_env("SANDBOX_ADVO_PORT", str(ADVO_PORT))))
    p.add_argument(
        "--webhook-base",
        default=_env("SANDBOX_WEBHOOK_BASE", WEBHOOK_BASE),
        help="webhooks post to <base>/create|update|delete",
    )
    p.add_argument("--seed", type=int, default=int(_env("SANDBOX_SEED", "42")))
    p.add_argument(
        "--records",
        type=int,
        default=int(_env("SANDBOX_RECORDS", "0")),
        help="extra synthetic linked pairs (benchmarks, e.g. 10000)",
    )
    p.add_argument("--no-demo", action="store_true", help="leave out the hand-made demo records")
    p.add_argument(
        "--token-ttl",
        type=int,
        default=int(_env("SANDBOX_TOKEN_TTL", "3600")),
        help="Advoware token lifetime in seconds",
    )
    p.add_argument(
        "--latency-ms",
        type=int,
        default=int(_env("SANDBOX_LATENCY_MS", "0")),
        help="added to every API call on both simulators",
    )
    p.add_argument(
        "--webhook-retry-delay",
        type=float,
        default=float(_env("SANDBOX_WEBHOOK_RETRY_DELAY", "1.0")),
        help="seconds between webhook delivery attempts (EspoCRM: 600)",
    )
    p.add_argument(
        "--webhook-interval",
        type=float,
        default=float(_env("SANDBOX_WEBHOOK_INTERVAL", "0.2")),
        help="seconds between webhook queue runs (EspoCRM: 120)",
    )
    p.add_argument("--webhook-timeout", type=float, default=10.0, help="sender timeout, seconds (408)")
    p.add_argument("--webhook-shuffle", action="store_true", help="shuffle batch order (chaos)")
    p.add_argument("--no-webhooks", action="store_true", help="do not pre-register the three webhooks")
    p.add_argument("--timezone", default=_env("SANDBOX_TIMEZONE", "Europe/Berlin"))
    p.add_argument("--log-level", default=_env("SANDBOX_LOG_LEVEL", "warning"))
    p.add_argument("--write-env", metavar="PATH", help="write the service dotenv for these ports and exit")
    a = p.parse_args(argv)
    config = SandboxConfig(
        host=a.host,
        espo_port=a.espo_port,
        advo_port=a.advo_port,
        webhook_base=a.webhook_base,
        seed=a.seed,
        records=a.records,
        demo=not a.no_demo,
        token_ttl=a.token_ttl,
        latency_ms=a.latency_ms,
        webhook_retry_delay=a.webhook_retry_delay,
        webhook_interval=a.webhook_interval,
        webhook_timeout=a.webhook_timeout,
        webhook_shuffle=a.webhook_shuffle,
        webhooks_enabled=not a.no_webhooks,
        advo_timezone=a.timezone,
        log_level=a.log_level,
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
