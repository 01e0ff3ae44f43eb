"""Circuit breakers, one per system (EspoCRM, Advoware), shared by every process via Redis.

A whole system being down or refusing our credentials is not a per-record matter: counting it
as each record's failure burns every record's attempts during an outage (permanently_failed
after a couple of hours) and, for refused credentials, hammers the login until EspoCRM locks
the IP out. So:

| event                                               | breaker                                 |
|-----------------------------------------------------|-----------------------------------------|
| AuthError from system S (401/403 after renewal)      | opens at once                           |
| TransientError from S for `threshold` distinct       | opens; those records move to "waiting"  |
| records within `window`, no success of S in between  |                                         |
| a sync that reached S and succeeded                  | the failure run of S is reset           |
| open: a sync wants S                                 | nothing is sent; the record waits       |
| sweep: S open                                        | one cheap probe; else nothing else runs |
| probe answers                                        | closed; waiting records released at    |
|                                                      | once (no back-off)                      |

A transient error of one record (a 5xx for that record only) does not trip it: other records'
successes reset the run, and the record follows its own back-off (services/sync/backoff.py).

Keys: `vmh:breaker:<system>` (JSON: since, kind, reason; present = open),
`vmh:breaker:<system>:run` (sorted set record id -> failure time, the current failure run),
`vmh:breaker:<system>:waiting` (set of record ids to release when it closes).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from services.errors import ApiError, AuthError, TransientError
from services.store import keys
from services.store.timestamps import utc_now
from services.sync.notify import record_event

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

# (condition, detail, active) -> None: an alert condition starts (active) or ends. The
# composition root maps it to the ops alerts (services/ops/alerts.py: one notice per condition).
Alert = Callable[[str, str, bool], Awaitable[None]]


def condition(system: str, kind: str) -> str:
    """The alert condition of an open breaker, e.g. `advoware_unreachable`, `espocrm_credentials`."""
    return f"{system}_{'credentials' if kind == 'auth' else 'unreachable'}"


class System(StrEnum):
    ESPOCRM = "espocrm"
    ADVOWARE = "advoware"


SYSTEMS = (System.ESPOCRM, System.ADVOWARE)


@dataclass(frozen=True)
class BreakerState:
    system: str
    since: str
    kind: str  # "auth" | "unavailable"
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"since": self.since, "kind": self.kind, "reason": self.reason}


def is_system_failure(exc: BaseException) -> bool:
    """Errors that may mean the whole system is unavailable (as opposed to bad data)."""
    return isinstance(exc, TransientError | AuthError)


@dataclass
class BreakerStates:
    """The breakers as they stand: all a reader (the status report) needs."""

    redis: Redis

    async def open_states(self) -> dict[str, BreakerState]:
        raws = await self.redis.mget([keys.breaker(s) for s in SYSTEMS])
        out: dict[str, BreakerState] = {}
        for system, raw in zip(SYSTEMS, raws, strict=True):
            if raw:
                try:
                    data = json.loads(raw)
                    out[system.value] = BreakerState(
                        system.value, data["since"], data["kind"], data["reason"]
                    )
                except (ValueError, KeyError, TypeError):
                    out[system.value] = BreakerState(system.value, "", "unavailable", "unreadable state")
        return out

    async def report(self) -> dict[str, Any]:
        """For the status endpoint: per system open/closed, since, reason, records waiting."""
        states = await self.open_states()
        out: dict[str, Any] = {}
        for system in SYSTEMS:
            state = states.get(system.value)
            waiting = int(await self.redis.scard(keys.breaker_waiting(system)))
            out[system.value] = {
                "open": state is not None,
                "waiting": waiting,
                **(state.as_dict() if state else {}),
            }
        return out


@dataclass
class CircuitBreakers(BreakerStates):
    """`threshold` and `window`: SYNC_BREAKER_THRESHOLD and SYNC_BREAKER_WINDOW_SECONDS (Settings)."""

    _: KW_ONLY
    threshold: int
    window: timedelta
    clock: Callable[[], datetime] = utc_now
    alert: Alert | None = None

    def __post_init__(self) -> None:
        self.threshold = max(1, self.threshold)

    # ------------------------------------------------------------------ the engine's side
    async def hold(self, systems: list[str], record_id: str) -> None:
        """A record that could not be sent because a breaker is open: released when it closes."""
        pipe = self.redis.pipeline(transaction=False)
        for system in systems:
            pipe.sadd(keys.breaker_waiting(system), record_id)
        await pipe.execute()

    async def record_success(self, *systems: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for system in systems:
            pipe.delete(keys.breaker_run(system))
        await pipe.execute()

    async def record_failure(self, record_id: str, exc: ApiError) -> bool:
        """Count a system-level failure of `record_id`; True if the breaker of that system is
        open now (the record then waits for it to close)."""
        system = exc.system
        if system not in {s.value for s in SYSTEMS} or not is_system_failure(exc):
            return False
        now = self.clock()
        run = keys.breaker_run(system)
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(run, {record_id: now.timestamp()})
        pipe.zremrangebyscore(run, "-inf", (now - self.window).timestamp())
        pipe.zcard(run)
        pipe.expire(run, int(self.window.total_seconds()) + 60)
        pipe.exists(keys.breaker(system))
        _, _, run_length, _, already_open = await pipe.execute()
        if already_open:
            await self.hold([system], record_id)
            return True
        if isinstance(exc, AuthError) or int(run_length) >= self.threshold:
            await self._trip(system, "auth" if isinstance(exc, AuthError) else "unavailable", exc)
            return True
        return False

    async def _trip(self, system: str, kind: str, exc: ApiError) -> None:
        reason = str(exc)[:300]
        state = json.dumps({"since": self.clock().isoformat(), "kind": kind, "reason": reason})
        first = await self.redis.set(keys.breaker(system), state, nx=True)
        # The records of the failure run wait for the probe (and are released without back-off).
        run = keys.breaker_run(system)
        members = await self.redis.zrange(run, 0, -1)
        pipe = self.redis.pipeline(transaction=True)
        if members:
            pipe.sadd(keys.breaker_waiting(system), *members)
        pipe.delete(run)
        await pipe.execute()
        if not first:
            return
        log.error("circuit breaker for %s opened (%s): %s", system, kind, reason)
        await record_event(self.redis, "breaker_open", system, reason)
        await self._alert(condition(system, kind), reason, active=True)

    async def _alert(self, name: str, detail: str, *, active: bool) -> None:
        if self.alert is None:
            return
        try:
            await self.alert(name, detail, active)
        except Exception as exc:  # an alert must never fail the caller
            log.warning("breaker alert %s failed: %s", name, type(exc).__name__)

    # ------------------------------------------------------------------ the sweep's side
    async def close(self, system: str) -> list[str]:
        """The probe answered: close the breaker and hand back every waiting record."""
        was_open = await self.redis.delete(keys.breaker(system))
        ids = await self.take_waiting(system)
        if was_open:
            log.warning("circuit breaker for %s closed; releasing %d waiting records", system, len(ids))
            await record_event(self.redis, "breaker_closed", system, f"released={len(ids)}")
            for kind in ("auth", "unavailable"):
                await self._alert(condition(system, kind), "", active=False)
        return ids

    async def take_waiting(self, system: str) -> list[str]:
        pipe = self.redis.pipeline(transaction=True)
        pipe.smembers(keys.breaker_waiting(system))
        pipe.delete(keys.breaker_waiting(system), keys.breaker_run(system))
        members, _ = await pipe.execute()
        return sorted(str(m) for m in members)

    async def trip(self, system: str, exc: ApiError) -> None:
        """Open at once (a sweep probe or listing hit an auth failure)."""
        await self._trip(system, "auth" if isinstance(exc, AuthError) else "unavailable", exc)
