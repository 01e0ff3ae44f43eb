"""Whether a record is synced now: the checks before any write.

- A system's circuit breaker is open: nothing is sent there; the record waits (no attempt
  counted) and is released the moment the every-minute probe finds the system answering again
  (services/sync/breaker.py).
- Parked for a person (`PARKED`): left alone unless the trigger may requeue it
  (`stays_parked`).
- `failed` and found by a sweep source: waits out its back-off unless someone edited it
  since our failure write (services/sync/backoff.py has the table).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.espocrm.fields import SYNC_STATUS
from services.sync.backoff import retry_due_at
from services.sync.model import PARKED, Outcome, Result, Trigger, stays_parked
from services.sync.states import SyncStatus, transition

if TYPE_CHECKING:
    from services.sync.backoff import OwnWrites
    from services.sync.breaker import CircuitBreakers

log = logging.getLogger(__name__)


class Admission:
    def __init__(
        self,
        *,
        breakers: CircuitBreakers,
        own_writes: OwnWrites,
        clock: Callable[[], datetime],
        retry_base: timedelta,
    ) -> None:
        self._breakers = breakers
        self._own_writes = own_writes
        self._clock = clock
        self.retry_base = retry_base

    async def circuit_open(self, record_id: str) -> Outcome | None:
        """An outcome `WAITING` if a system's breaker is open (the record is held for it)."""
        blocked = await self._breakers.open_states()
        if not blocked:
            return None
        # A system is down or refuses us: send nothing; the every-minute probe releases it.
        await self._breakers.hold(sorted(blocked), record_id)
        since = ", ".join(f"{s} since {blocked[s].since}" for s in sorted(blocked))
        log.info("record %s waits for %s (unavailable; nothing sent, no attempt counted)", record_id, since)
        return Outcome(record_id, Result.WAITING, reason="circuit open: " + ",".join(sorted(blocked)))

    async def admit(
        self, record_id: str, espo: Mapping[str, Any], trigger: Trigger
    ) -> tuple[SyncStatus, Outcome | None]:
        """(the status the run starts from, or an outcome `SKIPPED` that ends it)."""
        status = SyncStatus.parse(espo.get(SYNC_STATUS))
        if status is SyncStatus.EXCLUDED:  # a person took it out of the sync: left alone
            return status, Outcome(record_id, Result.SKIPPED, reason="excluded by a person")
        if status in PARKED:
            if stays_parked(status, espo, trigger):
                return status, Outcome(record_id, Result.SKIPPED, reason=f"parked as {status.value}")
            status = transition(status, SyncStatus.PENDING_SYNC)
        if status is SyncStatus.FAILED and await self._backoff_holds(espo, trigger):
            return status, Outcome(record_id, Result.SKIPPED, reason="back-off not due")
        return status, None

    async def _backoff_holds(self, espo: Mapping[str, Any], trigger: Trigger) -> bool:
        if trigger not in (Trigger.SWEEP, Trigger.DAILY_CHECK):
            return False
        if not await self._own_writes.untouched_since_our_write(espo):
            return False
        due = retry_due_at(espo, self.retry_base)
        return due is not None and due > self._clock()
