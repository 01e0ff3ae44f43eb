"""The backfill's Redis state: the lock that makes it one at a time (and makes the service
defer its creates, services/sync/create.py), the run record `status` shows, and the
per-run checkpoints that make a rerun resume."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.errors import BackfillBusyError
from services.store import keys
from services.store.lease import Lease, force_release

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)


class BackfillLock:
    """A `Lease` on `keys.BACKFILL_RUNNING` whose token names its holder (host, pid, since), so
    a second run can say who holds it and take over from a process that provably died."""

    def __init__(self, redis: Redis, clock: Callable[[], datetime]) -> None:
        self._redis = redis
        self._now = clock
        self._lease: Lease | None = None

    async def acquire(self) -> None:
        """Take the lock, or take over one whose holder provably died; else `BackfillBusyError`."""
        token = json.dumps(
            {
                "token": secrets.token_hex(8),
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "since": self._now().isoformat(),
            }
        )
        lease = Lease(self._redis, keys.BACKFILL_RUNNING, keys.BACKFILL_LEASE_SECONDS, token=token)
        if await lease.acquire():
            self._lease = lease
            return
        holder = await lock_holder(self._redis)
        if holder and _holder_is_dead(holder):
            log.warning("taking over the backfill lock of a dead process (pid %s)", holder.get("pid"))
            await force_release(self._redis, keys.BACKFILL_RUNNING)
            if await lease.acquire():
                self._lease = lease
                return
            holder = await lock_holder(self._redis)
        ttl = await self._redis.ttl(keys.BACKFILL_RUNNING)
        raise BackfillBusyError(
            f"a backfill is running (pid {holder.get('pid') if holder else '?'} on "
            f"{holder.get('host') if holder else '?'}); its lock expires in {ttl} s unless renewed"
        )

    def renewing(self) -> contextlib.AbstractAsyncContextManager[Lease]:
        """Keep the lock alive while the run works."""
        assert self._lease is not None, "acquire first"
        return self._lease.renewing()

    async def release(self) -> None:
        if self._lease is not None:
            await self._lease.release()
        self._lease = None


class RunLog:
    """The run record (`vmh:backfill:run`) and the checkpoints of each run."""

    def __init__(self, redis: Redis, clock: Callable[[], datetime]) -> None:
        self._redis = redis
        self._now = clock

    async def open(self, restart: bool) -> tuple[str, bool]:
        """(run id, resumed): an unfinished run resumes unless `restart`."""
        state = await run_state(self._redis)
        if state and not restart and state.get("status") in ("running", "interrupted"):
            return str(state["run_id"]), True
        run_id = self._now().strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)
        return run_id, False

    async def done(self, run_id: str) -> dict[str, str]:
        return dict(await self._redis.hgetall(checkpoint_key(run_id)))

    async def checkpoint(self, run_id: str, item: str, outcome: str, *, refresh_ttl: bool = True) -> None:
        await self._redis.hset(checkpoint_key(run_id), item, outcome)
        if refresh_ttl:
            await self._redis.expire(checkpoint_key(run_id), keys.BACKFILL_CHECKPOINT_TTL_SECONDS)

    async def save(
        self,
        run_id: str,
        status: str,
        counts: Mapping[str, int],
        *,
        outcomes: Mapping[str, int] | None = None,
        failures: int | None = None,
        reason: str | None = None,
    ) -> None:
        state = await run_state(self._redis) or {}
        if state.get("run_id") != run_id:
            state = {"run_id": run_id, "started_at": self._now().isoformat()}
        state.update(
            {
                "status": status,
                "updated_at": self._now().isoformat(),
                "counts": dict(counts),
                "done": int(await self._redis.hlen(checkpoint_key(run_id))),
            }
        )
        if outcomes is not None:
            state["outcomes"] = dict(outcomes)
            state["failures"] = failures or 0
        if reason:
            state["reason"] = reason
        await self._redis.set(keys.BACKFILL_RUN_STATE, json.dumps(state, sort_keys=True))


def checkpoint_key(run_id: str) -> str:
    return keys.backfill_done(run_id)


async def run_state(redis: Redis) -> dict[str, Any] | None:
    raw = await redis.get(keys.BACKFILL_RUN_STATE)
    return _json_object(raw, unreadable=None)


async def lock_holder(redis: Redis) -> dict[str, Any] | None:
    """Who holds the backfill lease (its token: host, pid, since); a token that is not JSON
    (set by hand) is shown as it is."""
    raw = await redis.get(keys.BACKFILL_RUNNING)
    return _json_object(raw, unreadable={"token": raw})


def _json_object(raw: Any, *, unreadable: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON object in `raw`; None if absent (or not an object), `unreadable` if not JSON."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return unreadable
    return value if isinstance(value, dict) else None


def _holder_is_dead(holder: Mapping[str, Any]) -> bool:
    """Only provable on the same host: its pid no longer exists."""
    if holder.get("host") != socket.gethostname():
        return False
    try:
        pid = int(holder.get("pid") or 0)
    except (TypeError, ValueError):
        return False
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False
