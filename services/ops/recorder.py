"""After every sync of a record: its history entry, its metrics, its waiting notices, its alert.

The engine calls `SyncRecorder.after_sync(outcome, trigger)` once per finished sync (and
`after_delete` for an EspoCRM delete); everything here is best effort for the sync itself: a
failure is logged (ids only) and never changes the sync's outcome.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from services.conditions import AlertCondition
from services.ops.history import HistoryEntry, HistoryStore, direction_of
from services.store.counters import MetricName
from services.sync.model import Result

if TYPE_CHECKING:
    from services.ops.alerts import Alerts
    from services.store.counters import Metrics
    from services.sync.notify import Notifier

log = logging.getLogger(__name__)


# A sync that left the record in step with Advoware (a permanent failure's alert ends).
SETTLED = frozenset({Result.CREATED, Result.UPDATED, Result.UNCHANGED})
FAILED = frozenset({Result.FAILED, Result.PERMANENTLY_FAILED})


class OutcomeLike(Protocol):
    record_id: str
    result: Result
    plan: Any
    betnr: int | None
    reason: str | None


def entry_for_outcome(outcome: OutcomeLike, trigger: str, at: datetime) -> HistoryEntry:
    """Old -> new for every field written (from the plan's changes), conflicts with both values."""
    plan = outcome.plan
    to_advo = sorted(plan.to_advo) if plan is not None else []
    to_espo = sorted(plan.to_espo) if plan is not None else []
    changes: list[dict[str, Any]] = []
    for change in getattr(plan, "changes", ()) or ():
        if change.field in plan.to_advo:
            changes.append(
                {"field": change.field, "system": "advoware", "old": change.advo_value, "new": change.value}
            )
        if change.field in plan.to_espo:
            changes.append(
                {"field": change.field, "system": "espocrm", "old": change.espo_value, "new": change.value}
            )
    conflicts = tuple(
        {"field": c.field, "espocrm": c.espo_value, "advoware_overwritten": c.advo_value}
        for c in (plan.conflicts if plan is not None else ())
    )
    if conflicts or (to_advo and not to_espo):
        winner: str | None = "espocrm"
    elif to_espo and not to_advo:
        winner = "advoware"
    else:
        winner = None
    result = Result(outcome.result)
    error = {"reason": outcome.reason} if result in FAILED and outcome.reason else None
    return HistoryEntry(
        at=at.isoformat(),
        trigger=trigger,
        result=result.value,
        direction=direction_of(to_advo, to_espo),
        fields_to_advoware=tuple(to_advo),
        fields_to_espocrm=tuple(to_espo),
        changes=tuple(changes),
        conflicts=conflicts,
        winner=winner,
        betnr=outcome.betnr,
        error=error,
        reason=None if error else outcome.reason,
    )


@dataclass(frozen=True, kw_only=True)
class SyncRecorder:
    history: HistoryStore
    metrics: Metrics
    notifier: Notifier
    alerts: Alerts

    async def after_sync(self, outcome: OutcomeLike, trigger: str) -> None:
        result = Result(outcome.result)
        self.metrics.inc(MetricName.SYNCS, trigger=trigger, result=result.value)
        if outcome.plan is not None and outcome.plan.conflicts:
            self.metrics.inc(MetricName.CONFLICTS, float(len(outcome.plan.conflicts)))
        if result is Result.LOCKED:
            return  # the holder records its own run
        try:
            await self.history.add(outcome.record_id, entry_for_outcome(outcome, trigger, datetime.now(UTC)))
            if result in SETTLED:
                await self.alerts.clear_condition(AlertCondition.record_failed(outcome.record_id))
                await self.notifier.retry_pending(outcome.record_id)
        except Exception as exc:  # never fail a finished sync for its bookkeeping
            log.warning("recording the sync of %s failed: %s", outcome.record_id, type(exc).__name__)

    async def permanently_failed(self, record_id: str, message: str) -> None:
        """One notice per record reaching permanently_failed (and one when it syncs again)."""
        await self.alerts.raise_condition(
            AlertCondition.record_failed(record_id), message, after=timedelta(0)
        )

    async def flush(self) -> None:
        await self.metrics.flush()
