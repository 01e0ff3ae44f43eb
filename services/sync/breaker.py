"""Circuit breakers, one per system (EspoCRM, Advoware), shared by every process via Redis.

A whole system being down or refusing our credentials is not a per-record matter: counting it
as each record's failure burns every record's attempts during an outage and makes a record
wait out a back-off long after the system is back; for refused credentials it hammers the
login until EspoCRM locks the IP out. Which failures point at the system is the table of
services/sync/fault.py. The breaker:

| event                                               | breaker                                 |
|-----------------------------------------------------|-----------------------------------------|
| a sync fails with a `SYSTEM`/`CREDENTIALS` fault,   | one confirming probe: it fails -> opens |
| breaker closed                                      | at once, the record waits (held); it    |
|                                                     | answers -> the record's own failure     |
| a sync wants S while S is open                      | nothing is sent; the record waits       |
| every minute (cron) and every sweep, S open         | one probe; nothing else is sent to S    |
| a probe answers                                     | closed; every waiting record released   |
|                                                     | at once, oldest first (no back-off)     |
| every minute, S closed, records still held          | released (held in a race with a probe)  |

Probes are spaced across all processes and sent once (no retry): a failure's confirming probe
reuses an answer younger than 30 s, the every-minute cron one younger than 10 s (so it probes
every minute, and a confirming probe plus the cron make at most 2 probes a minute). A failure
that finds a probe of the last 30 s answered is the record's own; one that finds it failed or
still running waits with the others.

Keys (services/store/keys.py): `vmh:breaker:<system>` (JSON: since, kind, reason; present =
open), `vmh:breaker:<system>:held` (zset record id -> since, the records waiting for it),
`vmh:breaker:<system>:probe` (the last probe's answer, for 30 s).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from services.conditions import Alert, AlertCondition
from services.errors import ApiError, AuthError
from services.http.retry import single_attempt
from services.store import keys
from services.store.counters import EventKind
from services.store.timestamps import utc_now
from services.sync.stores import RecentEvents

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from services.sync.ports import AdvowareApi, EspoLister

log = logging.getLogger(__name__)

# One cheap read of a system; raises the error tree when it does not answer.
Probe = Callable[[], Awaitable[None]]


class System(StrEnum):
    ESPOCRM = "espocrm"
    ADVOWARE = "advoware"


SYSTEMS = (System.ESPOCRM, System.ADVOWARE)
SYSTEM_NAMES = frozenset(s.value for s in SYSTEMS)


class ProbeAnswer(StrEnum):
    ANSWERED = "ok"
    DOWN = "down"
    PENDING = "pending"  # another process's probe is under way


# The probe slot, compare-and-set: the last probe's "answer@time" if it is younger than the
# spacing (ARGV[2] seconds, by the breakers' clock: ARGV[1]); else take the slot ("pending").
_TAKE_PROBE = """
local last = redis.call('GET', KEYS[1])
if last then
  local at = tonumber(string.match(last, '@(.+)$'))
  if at and tonumber(ARGV[1]) - at < tonumber(ARGV[2]) then return last end
end
redis.call('SET', KEYS[1], 'pending@' .. ARGV[1], 'EX', ARGV[3])
return false
"""


@dataclass(frozen=True)
class BreakerState:
    system: str
    since: str
    kind: str  # "auth" | "unavailable"
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"since": self.since, "kind": self.kind, "reason": self.reason}


@dataclass(frozen=True)
class Release:
    """What one round of probes found: systems still unavailable, and the records to sync now
    (oldest waiting first; empty while any system is still unavailable)."""

    blocked: list[str]
    ids: list[str]


def system_probes(espo: EspoLister, advo: AdvowareApi, entity: str) -> dict[str, Probe]:
    """The probe of each system: one record of the listing each (authenticated, cheap), sent
    once (no retry: at most ~2 requests a minute reach a system that is down)."""

    async def espocrm() -> None:
        with single_attempt():  # one request: its answer decides, not a retry
            await espo.list(entity, select="id", max_size=1)

    async def advoware() -> None:
        rows = advo.iter_beteiligte(take=1)
        try:
            with single_attempt():
                async for _ in rows:
                    break
        finally:
            # The listing is a generator (the client's, a fake's): close it now, not when collected.
            if isinstance(rows, AsyncGenerator):
                await rows.aclose()

    return {System.ESPOCRM.value: espocrm, System.ADVOWARE.value: advoware}


@dataclass
class BreakerStates:
    """The breakers as they stand: all a reader (the status report, health) needs."""

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

    async def is_open(self, system: str) -> bool:
        return bool(await self.redis.exists(keys.breaker(system)))

    async def held(self, system: System, limit: int) -> list[tuple[str, float]]:
        """The first `limit` records held for `system`, oldest first: (id, since as a timestamp)."""
        rows = await self.redis.zrange(keys.breaker_held(system), 0, limit - 1, withscores=True)
        return [(str(rid), float(score)) for rid, score in rows]

    async def report(self) -> dict[str, Any]:
        """Per system: open/closed, since, reason, the records waiting and since when the
        oldest waits (status endpoint, health)."""
        states = await self.open_states()
        out: dict[str, Any] = {}
        for system in SYSTEMS:
            state = states.get(system.value)
            held = keys.breaker_held(system)
            waiting = int(await self.redis.zcard(held))
            oldest = await self.redis.zrange(held, 0, 0, withscores=True)
            out[system.value] = {
                "open": state is not None,
                "waiting": waiting,
                **(state.as_dict() if state else {}),
            }
            if oldest:
                since = datetime.fromtimestamp(float(oldest[0][1]), tz=UTC)
                out[system.value]["oldest_waiting_since"] = since.isoformat()
        return out


@dataclass
class CircuitBreakers(BreakerStates):
    """`probes`: the cheap read of each system (`system_probes`, built by services/runtime.py)."""

    _: KW_ONLY
    probes: Mapping[str, Probe] = field(default_factory=dict)
    clock: Callable[[], datetime] = utc_now
    alert: Alert | None = None

    # ------------------------------------------------------------------ the engine's side
    async def hold(self, systems: list[str], record_id: str) -> None:
        """A record waits for these systems: released, oldest first, when they answer again."""
        now = self.clock().timestamp()
        pipe = self.redis.pipeline(transaction=False)
        for system in systems:
            pipe.zadd(keys.breaker_held(system), {record_id: now}, nx=True)
        await pipe.execute()

    async def confirm(self, exc: ApiError, record_id: str | None) -> bool:
        """A failure of a sync that points at the system (services/sync/fault.py `SYSTEM`,
        `CREDENTIALS`): True if the system is unavailable (the breaker is open now and
        `record_id` waits for it); False if a probe answered (the failure is the record's)."""
        system = exc.system
        if system not in SYSTEM_NAMES:
            return False
        if not await self.redis.exists(keys.breaker(system)):
            answer, probe_error = await self.probe(system)
            if answer is ProbeAnswer.ANSWERED:
                log.info("%s answered a probe: the failure of %s is the record's own", system, record_id)
                return False
            if answer is ProbeAnswer.DOWN:
                await self._trip(system, probe_error or exc)
        if record_id is not None:
            await self.hold([system], record_id)
        return True

    async def probe(
        self, system: str, spacing: int = keys.BREAKER_PROBE_SPACING_SECONDS
    ) -> tuple[ProbeAnswer, ApiError | None]:
        """Probe `system` unless it was probed in the last `spacing` seconds (then that
        probe's answer)."""
        key = keys.breaker_probe(system)
        now = self.clock().timestamp()
        ttl = keys.BREAKER_PROBE_SPACING_SECONDS * 4
        last = await self.redis.eval(_TAKE_PROBE, 1, key, repr(now), str(spacing), str(ttl))
        if last:
            answer = str(last).partition("@")[0]
            return (ProbeAnswer(answer) if answer in set(ProbeAnswer) else ProbeAnswer.PENDING), None
        error: ApiError | None = None
        try:
            await self.probes[system]()
        except ApiError as exc:
            error = exc
        answer_now = ProbeAnswer.ANSWERED if error is None else ProbeAnswer.DOWN
        await self.redis.set(key, f"{answer_now.value}@{now!r}", ex=ttl)
        log.info("probe of %s: %s", system, "answered" if error is None else failure_text(error))
        return answer_now, error

    async def _trip(self, system: str, exc: ApiError) -> None:
        kind = "auth" if isinstance(exc, AuthError) else "unavailable"
        reason = failure_text(exc)
        state = json.dumps({"since": self.clock().isoformat(), "kind": kind, "reason": reason})
        if not await self.redis.set(keys.breaker(system), state, nx=True):
            return
        log.error("circuit breaker for %s opened (%s): %s", system, kind, reason)
        await RecentEvents(self.redis).record(EventKind.BREAKER_OPEN, system, reason)
        await self._alert(AlertCondition.system(system, credentials=kind == "auth"), reason, active=True)

    async def _alert(self, condition: AlertCondition, detail: str, *, active: bool) -> None:
        if self.alert is None:
            return
        try:
            await self.alert(condition, detail, active)
        except Exception as exc:  # an alert must never fail the caller
            log.warning("breaker alert %s failed: %s", condition.name, type(exc).__name__)

    # ------------------------------------------------------------------ the cron's side
    async def release(self) -> Release:
        """Every minute and every sweep: probe each open breaker (spaced), close those that
        answer, and hand back every waiting record, oldest first - none while a system is
        still unavailable (every sync needs both)."""
        states = await self.open_states()
        blocked = []
        for system in SYSTEMS:
            if system.value not in states:
                continue
            answer, error = await self.probe(system.value, keys.BREAKER_RELEASE_SPACING_SECONDS)
            if answer is ProbeAnswer.ANSWERED:
                await self._close(system.value)
            else:
                log.warning(
                    "%s still unavailable: %s", system.value, failure_text(error) if error else answer.value
                )
                blocked.append(system.value)
        if blocked:
            return Release(blocked, [])
        return Release([], await self._take_held())

    async def _close(self, system: str) -> None:
        if not await self.redis.delete(keys.breaker(system)):
            return
        waiting = int(await self.redis.zcard(keys.breaker_held(system)))
        log.warning("circuit breaker for %s closed; releasing %d waiting records", system, waiting)
        await RecentEvents(self.redis).record(EventKind.BREAKER_CLOSED, system, f"released={waiting}")
        for credentials in (True, False):
            await self._alert(AlertCondition.system(system, credentials=credentials), "", active=False)

    async def _take_held(self) -> list[str]:
        """Every held record of every system, oldest first (each once), and forget them."""
        pipe = self.redis.pipeline(transaction=True)
        for system in SYSTEMS:
            pipe.zrange(keys.breaker_held(system), 0, -1, withscores=True)
            pipe.smembers(keys.breaker_waiting(system))  # held by an earlier version
            pipe.delete(keys.breaker_held(system), keys.breaker_waiting(system))
        answers = await pipe.execute()
        since: dict[str, float] = {}
        for i in range(0, len(answers), 3):
            held, legacy = answers[i], answers[i + 1]
            for member, score in held:
                since[str(member)] = min(float(score), since.get(str(member), float(score)))
            for member in legacy:
                since.setdefault(str(member), 0.0)
        return sorted(since, key=lambda rid: (since[rid], rid))


def failure_text(exc: ApiError) -> str:
    return str(exc)[:300]
