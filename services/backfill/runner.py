"""Running a backfill: lock, resume or start a run, execute the plan's actions phase by phase
with a checkpoint per finished item, seed the Advoware change poll, release.

A real run is resumable: every finished item is checkpointed in Redis (a rerun skips it), and
while it works it holds the backfill lease (`keys.BACKFILL_RUNNING`), which makes the service defer its own creates;
its own syncs pass `SyncOptions(defer_creates=False)` to the engine. A dry run only plans.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from services.backfill.items import ItemActions
from services.backfill.plan import (
    PHASES,
    Action,
    ActionKind,
    BackfillPlan,
    BackfillPlanner,
    ProgressFactory,
)
from services.backfill.state import BackfillLock, RunLog
from services.errors import ApiError, BackfillAbortedError, TransientError
from services.sync.deps import Systems
from services.sync.model import Outcome, Result, SyncOptions, Trigger

if TYPE_CHECKING:
    from services.sync.advoware_watch import AdvowareWatch
    from services.sync.engine import SyncEngine

log = logging.getLogger(__name__)

# How long a run waits for the identity index another instance is building (a rerun resumes).
INDEX_WAIT_SECONDS = 600.0
# The backfill's own syncs: it holds the backfill lock itself, so its creates must not wait.
BACKFILL_SYNC = SyncOptions(defer_creates=False)


@dataclass
class BackfillResult:
    run_id: str | None
    dry_run: bool
    plan: BackfillPlan
    resumed: bool = False
    already_done: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, str]] = field(default_factory=list)
    created_in_advoware: list[dict[str, Any]] = field(default_factory=list)
    created_in_espocrm: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False
    watermark_seeded: bool = False

    def to_dict(self) -> dict[str, Any]:
        r = self.plan.report
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "finished": self.finished,
            "resumed": self.resumed,
            "already_done": self.already_done,
            "counts": self.plan.counts(),
            "outcomes": dict(self.outcomes),
            "failures": self.failures,
            "linked_by_identity": [asdict(x) for x in r.linked_by_identity],
            "ambiguous": [asdict(x) for x in r.ambiguous],
            "espo_only": r.espo_only,
            "advo_only": r.advo_only,
            "conflicts": [asdict(x) for x in r.conflicts],
            "updates": [asdict(x) for x in self.plan.updates],
            "created_in_advoware": self.created_in_advoware,
            "created_in_espocrm": self.created_in_espocrm,
            "watermark_seeded": self.watermark_seeded,
        }


@dataclass(frozen=True)
class BackfillOptions:
    """An operator's choices for one run (the CLI's flags; these defaults are the CLI's)."""

    create_in_espocrm: bool = False  # also create Advoware-only records in EspoCRM
    concurrency: int = 8  # records worked on at once
    max_consecutive_failures: int = 25  # transient failures in a row that abort the run


@dataclass(kw_only=True)
class Backfill:
    """Reads both systems, matches, and (unless dry) links, syncs, creates and holds.

    Built by the composition root (services/runtime.py `Runtime.backfill`). `engine` is the
    service's `SyncEngine`; the backfill's syncs run with `BACKFILL_SYNC`; `watch` is the
    Advoware change poll whose watermark a finished run seeds."""

    systems: Systems
    engine: SyncEngine
    watch: AdvowareWatch
    options: BackfillOptions
    progress: ProgressFactory

    def __post_init__(self) -> None:
        self.concurrency = max(1, self.options.concurrency)  # records worked on at once
        self.planner = BackfillPlanner(
            systems=self.systems,
            engine=self.engine,
            create_in_espocrm=self.options.create_in_espocrm,
            concurrency=self.concurrency,
            progress=self.progress,
        )
        self.items = ItemActions(systems=self.systems, engine=self.engine)
        self.lock = BackfillLock(self.systems.redis, self.systems.clock)
        self.runs = RunLog(self.systems.redis, self.systems.clock)
        self._consecutive_failures = 0
        self._locked: list[Action] = []  # items whose record was locked: retried at the end

    async def plan(self, *, detail: bool = False) -> BackfillPlan:
        return await self.planner.plan(detail=detail)

    # ------------------------------------------------------------------ the run
    async def run(self, *, dry_run: bool = False, restart: bool = False) -> BackfillResult:
        """Dry run: plan only (GETs). Otherwise lock, resume or start a run, execute, finish."""
        if dry_run:
            plan = await self.plan(detail=True)
            return BackfillResult(run_id=None, dry_run=True, plan=plan, finished=True)
        await self.lock.acquire()
        try:
            async with self.lock.renewing():
                return await self._run_locked(restart)
        finally:
            await self.lock.release()

    async def _run_locked(self, restart: bool) -> BackfillResult:
        run_id, resumed = await self.runs.open(restart)
        plan = await self.plan()
        result = BackfillResult(run_id=run_id, dry_run=False, plan=plan, resumed=resumed)
        await self.runs.save(run_id, "running", plan.counts())
        try:
            await self._execute(plan, result)
        except BaseException as exc:
            await self._save(result, "interrupted", reason=type(exc).__name__)
            raise
        failed = bool(result.failures)
        if plan.read_started is not None:
            result.watermark_seeded = await self.watch.seed_watermark(plan.advo_newest, plan.read_started)
        result.finished = not failed
        await self._save(result, "finished" if not failed else "finished_with_failures")
        return result

    async def _save(self, result: BackfillResult, status: str, reason: str | None = None) -> None:
        assert result.run_id is not None
        await self.runs.save(
            result.run_id,
            status,
            result.plan.counts(),
            outcomes=result.outcomes,
            failures=len(result.failures),
            reason=reason,
        )

    async def _execute(self, plan: BackfillPlan, result: BackfillResult) -> None:
        assert result.run_id is not None
        done = await self.runs.done(result.run_id)
        todo = [a for a in plan.actions if a.item not in done]
        # Items an earlier attempt of this run finished (most no longer show up in the plan at
        # all: a linked or created record is now simply an in-sync pair).
        result.already_done = len(done)
        if result.resumed:
            log.info(
                "backfill %s resumes: %d items were done before, %d still planned are skipped",
                result.run_id,
                len(done),
                len(plan.actions) - len(todo),
            )
        bar = self.progress(len(todo), "backfill")
        try:
            for kinds in PHASES:
                batch = [a for a in todo if a.kind in kinds]
                if any(a.kind is ActionKind.CREATE for a in batch):
                    await self._identity_index_ready()
                await self._phase(batch, result, bar.update)
            if self._locked:
                await self._retry_locked(result)
        except BaseExceptionGroup as group:
            first = group.exceptions[0]
            if isinstance(first, BackfillAbortedError):
                raise first from None
            raise BackfillAbortedError(f"interrupted by {type(first).__name__}: {first}") from first
        finally:
            bar.close()

    async def _identity_index_ready(self) -> None:
        """Every create passes the identity check (services/sync/linking.py), which waits while
        the identity index is incomplete: build it to the end first, so that no create of this
        run is skipped (a skipped create would be checkpointed as done)."""
        index = self.engine.linker.index
        deadline = asyncio.get_running_loop().time() + INDEX_WAIT_SECONDS
        while not (await index.build(self.systems.advo)).ready:
            if asyncio.get_running_loop().time() > deadline:
                raise BackfillAbortedError("the identity index is still being built elsewhere; rerun later")
            await asyncio.sleep(0.5)  # another instance holds the build lease

    async def _phase(self, batch: list[Action], result: BackfillResult, tick: Callable[[int], Any]) -> None:
        sem = asyncio.Semaphore(self.concurrency)

        async def one(action: Action) -> None:
            async with sem:
                outcome = await self._do(action, result)
            if outcome is not None:
                await self._checkpoint(action, outcome, result)
            tick(1)

        async with asyncio.TaskGroup() as tg:
            for action in batch:
                tg.create_task(one(action))

    async def _checkpoint(
        self, action: Action, outcome: str, result: BackfillResult, *, refresh_ttl: bool = True
    ) -> None:
        assert result.run_id is not None
        await self.runs.checkpoint(result.run_id, action.item, outcome, refresh_ttl=refresh_ttl)
        result.outcomes[outcome.split(":", 1)[0]] += 1

    async def _do(self, action: Action, result: BackfillResult) -> str | None:
        """Run one item; the returned outcome is checkpointed (None: not done, a rerun retries)."""
        try:
            if action.kind is ActionKind.PARK:
                return await self.items.park(action)
            if action.kind is ActionKind.LINK:
                await self.items.link(action)
                return self._sync_outcome(action, await self._sync(action), result)
            if action.kind in (ActionKind.SYNC, ActionKind.CREATE):
                if action.kind is ActionKind.CREATE:
                    await self.items.unhold(action)
                return self._sync_outcome(action, await self._sync(action), result)
            if action.kind is ActionKind.CREATE_ESPO:
                return await self._create_in_espocrm(action, result)
        except ApiError as exc:
            self._failure(
                action,
                result,
                f"{type(exc).__name__}: {exc}"[:300],
                transient=isinstance(exc, TransientError),
            )
            return None
        raise AssertionError(f"unknown action {action.kind}")

    async def _sync(self, action: Action) -> Outcome:
        assert action.espo_id is not None
        # A pair the backfill looked at counts as verified (advowareLastSync = now), so the
        # sweep after a backfill does not daily-check every pair again.
        # An operator's (re)run: a record failed earlier is tried now, not after its back-off.
        trigger = Trigger.RETRY_NOW if action.kind is ActionKind.CREATE else Trigger.DAILY_CHECK
        return await self.engine.sync_record(action.espo_id, trigger, options=BACKFILL_SYNC)

    def _sync_outcome(self, action: Action, outcome: Outcome, result: BackfillResult) -> str | None:
        if outcome.result in (Result.FAILED, Result.PERMANENTLY_FAILED):
            self._failure(
                action,
                result,
                outcome.reason or outcome.result.value,
                transient=outcome.result is Result.FAILED,
            )
            return None
        if outcome.result is Result.LOCKED:
            # Another worker holds it - or a crashed earlier attempt, whose lock only expires
            # after the TTL. Retried at the end of the run (`_retry_locked`).
            self._locked.append(action)
            return None
        self._consecutive_failures = 0
        if outcome.result is Result.CREATED:
            result.created_in_advoware.append({"id": action.espo_id, "betnr": outcome.betnr})
        return f"{action.kind}:{outcome.result.value}"

    async def _create_in_espocrm(self, action: Action, result: BackfillResult) -> str | None:
        rid, created = await self.items.create_in_espocrm(action)
        if created:
            result.created_in_espocrm.append({"id": rid, "betnr": action.betnr})
        outcome = await self.engine.sync_record(rid, Trigger.SWEEP, options=BACKFILL_SYNC)
        if outcome.result in (Result.FAILED, Result.PERMANENTLY_FAILED):
            self._failure(action, result, outcome.reason or outcome.result.value, transient=True)
            return None
        self._consecutive_failures = 0
        return f"create_espo:{rid}"

    async def _retry_locked(self, result: BackfillResult) -> None:
        """Items whose record was locked: wait for each lock to go (a live worker finishes, a
        dead one's lock expires after the TTL), then run the item once more."""
        waiting, self._locked = self._locked, []
        ttl = self.engine.locks.ttl_ms / 1000
        log.warning("backfill: %d record(s) locked; waiting up to %.0f s for their locks", len(waiting), ttl)
        deadline = asyncio.get_running_loop().time() + ttl + 2
        for action in waiting:
            assert action.espo_id is not None
            while await self.engine.locks.holder(action.espo_id) is not None:
                if asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.5)
            outcome = await self._do(action, result)
            if outcome is not None:
                await self._checkpoint(action, outcome, result, refresh_ttl=False)
        for action in self._locked:
            self._failure(
                action, result, "record locked by another worker; rerun to finish it", transient=False
            )
        self._locked = []

    def _failure(self, action: Action, result: BackfillResult, reason: str, *, transient: bool) -> None:
        result.failures.append({"item": action.item, "action": action.kind.value, "reason": reason})
        result.outcomes["failed"] += 1
        # The reason may carry a server's free text (services/errors.py): the run's report only.
        log.warning("backfill %s %s failed", action.kind.value, action.item)
        self._consecutive_failures = self._consecutive_failures + 1 if transient else 0
        if self._consecutive_failures >= self.options.max_consecutive_failures:
            raise BackfillAbortedError(
                f"{self._consecutive_failures} transient failures in a row (a system seems down); "
                "rerun later to resume"
            )
