"""One running stack for many e2e tests: bring it back to a freshly started stack's data between
them, instead of starting Redis, the simulators and Motia again (20-60 s each on this machine).

    defaults = StackDefaults.read(stack)      # once, right after the start
    reset_stack(stack, defaults)              # fresh data (before a module that uses it)
    reset_stack(stack, defaults, demo=False)  # the same, with the simulators' records as --no-demo
    reset_modes(stack, defaults)              # only the run-time modes and held crons (each test)

What a full reset does, in this order:

1. Holds the cron sweep's and the ops watch's ticks for this minute and the next (none starts in
   the middle of the reset), then waits until the service is idle: Motia's queues empty, no
   sweep, identity-index build or backfill lease held, neither simulator called for a second.
2. Resets both simulators (`POST /__sandbox/reset`: records as at the start or as the keyword
   arguments say, call logs, faults, drift, ignore-on-put, versioning, notes, webhook queues,
   Advoware tokens) and the run-time modes the reset endpoint keeps (latency, EspoCRM's webhook
   delivery settings, the Advoware token lifetime) to what they were at the start.
3. Deletes every `vmh:*` key: snapshots, watermarks, identity index, intents, breakers, alerts,
   counters, the Advoware token cache, and every held cron tick. The service is then where it is
   after its first start on an empty Redis: the identity-index cron builds the index within a
   minute (or the first create builds it), the first sweep reads both systems from the start.

Motia's own keys (`motia:*`: queues, its stored logs and traces) stay: the service keeps no state
there (every step reads and writes the `vmh:*` keys only), and the queues are empty after step 1.

Why not a full reset before every test: step 1 waits for the previous test's last events, which
costs 3-15 s per test on this shared machine, more than the stack start it saves. Within a module
the tests keep apart by their own unique names (as they did on the old per-module stacks); what
one test switches on (faults, drift, latency, paused webhooks, a held cron) `reset_modes` undoes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import redis

from services.store import keys
from tests.support.stack import Stack
from tests.support.sweep_cost import hold_cron, log_seq, queues_idle

# Leases of work that runs outside Motia's queues (crons, the ops CLI): wait until none is held.
_RUNNING = (keys.SWEEP_RUNNING, keys.IDENTITY_BUILDING, keys.BACKFILL_RUNNING)


@dataclass(frozen=True)
class StackDefaults:
    """The simulators' run-time settings as the stack started with them (what a reset restores)."""

    webhook_settings: dict[str, Any]
    token_ttl: int

    @classmethod
    def read(cls, stack: Stack) -> StackDefaults:
        hooks = httpx.get(f"{stack.espo_url}/__sandbox/webhooks", params={"log": 0}, timeout=30)
        ttl = httpx.get(f"{stack.advo_url}/__sandbox/tokens/ttl", timeout=30)
        hooks.raise_for_status()
        ttl.raise_for_status()
        return cls(dict(hooks.json()["settings"]), int(ttl.json()["token_ttl"]))


def reset_stack(stack: Stack, defaults: StackDefaults, **records: Any) -> None:
    """Fresh data on a running stack (see the module docstring). `records`: the body of the
    simulators' `/__sandbox/reset` (`demo`, `records`, `seed`), e.g. `demo=False`."""
    hold_cron(stack, minutes=2, holder="held-by-reset")
    wait_idle(stack)
    for base in (stack.espo_url, stack.advo_url):
        httpx.post(f"{base}/__sandbox/reset", json=records, timeout=30).raise_for_status()
    reset_modes(stack, defaults)
    _delete(stack, keys.PREFIX + "*")


def reset_modes(stack: Stack, defaults: StackDefaults) -> None:
    """Only the simulators' run-time modes back to the start (no faults, no drift, no latency,
    the start's webhook delivery settings and token lifetime, no ignored fields, versioning off)
    and every held cron tick released; the records and the service's data stay. Cheap: no wait."""
    with httpx.Client(timeout=30) as http:
        calls: list[tuple[str, str, dict[str, Any] | None]] = [
            ("DELETE", f"{stack.espo_url}/__sandbox/faults", None),
            ("DELETE", f"{stack.advo_url}/__sandbox/faults", None),
            ("POST", f"{stack.espo_url}/__sandbox/latency", {"latency_ms": 0}),
            ("POST", f"{stack.advo_url}/__sandbox/latency", {"latency_ms": 0}),
            ("DELETE", f"{stack.advo_url}/__sandbox/drift", None),
            ("DELETE", f"{stack.advo_url}/__sandbox/ignore-on-put", None),
            ("POST", f"{stack.advo_url}/__sandbox/tokens/ttl", {"token_ttl": defaults.token_ttl}),
            ("POST", f"{stack.espo_url}/__sandbox/webhooks/settings", defaults.webhook_settings),
            ("POST", f"{stack.espo_url}/__sandbox/versioning", {"enabled": False}),
        ]
        for method, url, body in calls:
            http.request(method, url, json=body).raise_for_status()
    _delete(stack, keys.sweep_tick("*"), keys.watch_tick("*"))


def wait_idle(stack: Stack, quiet: float = 1.0, timeout: float = 300) -> None:
    """Until no work of the service is under way: Motia's queues empty, no sweep / index build /
    backfill lease held, and neither simulator called for `quiet` seconds."""
    r = redis.Redis.from_url(stack.redis_url)
    try:
        deadline = time.monotonic() + timeout
        last = (-1, -1)
        still_since = time.monotonic()
        while time.monotonic() < deadline:
            now = (log_seq(stack.espo_url), log_seq(stack.advo_url))
            if now != last or r.exists(*_RUNNING) or not queues_idle(stack):
                last, still_since = now, time.monotonic()
            elif time.monotonic() - still_since >= quiet:
                return
            time.sleep(0.2)
    finally:
        r.close()
    raise TimeoutError(f"the service did not go idle within {timeout} s")


def _delete(stack: Stack, *patterns: str) -> None:
    """Delete the keys matching the SCAN patterns."""
    r = redis.Redis.from_url(stack.redis_url)
    try:
        for pattern in patterns:
            names = list(r.scan_iter(match=pattern, count=1000))
            for start in range(0, len(names), 500):
                r.delete(*names[start : start + 500])
    finally:
        r.close()
