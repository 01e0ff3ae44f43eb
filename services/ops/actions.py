"""The operations behind the ops CLI (`python -m services.ops`) and the ops API steps.

Every function takes the pieces it needs (clients, engine, Redis) and returns plain
JSON-able dicts, so the CLI prints them and an API step returns them unchanged. Logs carry
record ids and counts only; the field-by-field dry-run plan (`plan_dict`) carries values,
because an operator asked for exactly that record (see docs/ops.md).

The write actions here at their edges (tests/unit/test_ops_edges.py; failures answered as
services/ops/answers.py says, never an unhandled error):

| action | moment                                          | outcome                                         |
|--------|-------------------------------------------------|-------------------------------------------------|
| retry  | a record's write answer is lost                 | 503; a repeat requeues the rest (the first is pending_sync already) |
| retry  | a person excludes a listed record meanwhile     | read again under the lock: left excluded (`moved`) |
| retry  | a sync holds a listed record                    | left alone (`busy`)                             |
| retry  | Redis emptied afterwards                        | nothing lost: pending_sync lives in EspoCRM; the sweep syncs it |
| retry  | EspoCRM down now                                | 503, nothing written                            |
| unlock | Redis down now                                  | 503; a repeat releases (then answers released: false) |
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.errors import OperationError
from services.espocrm.fields import SYNC_ERROR_MESSAGE, SYNC_RETRY_COUNT, SYNC_STATUS
from services.sync.decide import change_rows
from services.sync.model import ENTITY, Trigger
from services.sync.planning import RecordPlan
from services.sync.states import SyncStatus, transition

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from services.events import Emit
    from services.runtime import Runtime
    from services.sync.engine import SyncEngine
    from services.sync.model import Outcome
    from services.sync.ports import EspoListingApi

log = logging.getLogger(__name__)

RETRYABLE = (SyncStatus.FAILED, SyncStatus.PERMANENTLY_FAILED)


# --------------------------------------------------------------------------- request parsing


@dataclass(frozen=True)
class RecordRequest:
    record_id: str | None
    betnr: int | None
    dry_run: bool


def parse_record_request(body: Any) -> RecordRequest:
    """`{"id": "..."}` or `{"betnr": 100001}`, optional `"dryRun": true`. Raises OperationError."""
    if not isinstance(body, Mapping):
        raise OperationError('expected a JSON object: {"id": "..."} or {"betnr": N}')
    rid, betnr, dry = body.get("id"), body.get("betnr"), body.get("dryRun", False)
    if not isinstance(dry, bool):
        raise OperationError("dryRun must be true or false")
    if (rid is None) == (betnr is None):
        raise OperationError('give exactly one of "id" and "betnr"')
    if rid is not None and (not isinstance(rid, str) or not rid.strip()):
        raise OperationError("id must be a non-empty string")
    if betnr is not None:
        if isinstance(betnr, bool) or not isinstance(betnr, int | str):
            raise OperationError("betnr must be a number")
        try:
            betnr = int(betnr)
        except ValueError:
            raise OperationError("betnr must be a number") from None
        if betnr <= 0:
            raise OperationError("betnr must be positive")
    return RecordRequest(rid.strip() if isinstance(rid, str) else None, betnr, dry)


# --------------------------------------------------------------------------- sync one record


async def resolve_record(espo: EspoListingApi, record_id: str | None, betnr: int | None) -> str:
    """The record an operator means: its id, or the one EspoCRM record carrying `betnr` (404
    when none does, 409 when several do)."""
    from services.sync.linking import records_with_betnr

    if record_id:
        return record_id
    assert betnr is not None
    ids = await records_with_betnr(espo, betnr)
    if not ids:
        raise OperationError(
            f"no EspoCRM record is linked to betnr {betnr} (Advoware-only: see `backfill --dry-run`)", 404
        )
    if len(ids) > 1:
        raise OperationError(f"betnr {betnr} is linked from several EspoCRM records: {', '.join(ids)}", 409)
    return ids[0]


def _show(field: str, value: Any) -> str:
    from services.beteiligte import mapper

    return mapper.describe(field, value).split(": ", 1)[1]


def plan_dict(plan: RecordPlan) -> dict[str, Any]:
    """The field-by-field dry-run plan: for each field that would be written, both values and
    where it goes. Values are shown as the mapper describes them (canonical form)."""
    from services.beteiligte import mapper

    out: dict[str, Any] = {
        "id": plan.record_id,
        "betnr": plan.betnr,
        "status": plan.status,
        "action": plan.action,
        "reason": plan.reason,
        "fields": [],
    }
    if plan.action == "create" and plan.espo is not None:
        out["fields"] = [
            {
                "field": f,
                "espocrm": _show(f, v),
                "advoware": None,
                "direction": "to_advoware",
                "conflict": False,
            }
            for f in mapper.CANONICAL_FIELDS
            if (v := plan.espo.get(f)) not in (None, "", [])
        ]
    if plan.plan is not None and plan.espo is not None and plan.advo is not None:
        out["basis"] = plan.plan.basis.value
        out["snapshot"] = plan.has_snapshot
        out["fields"] = change_rows(plan.plan)
    return out


def outcome_dict(outcome: Outcome) -> dict[str, Any]:
    plan = outcome.plan
    return {
        "id": outcome.record_id,
        "result": outcome.result.value,
        "betnr": outcome.betnr,
        "reason": outcome.reason,
        "writes": outcome.writes,
        "to_advoware": sorted(plan.to_advo) if plan else [],
        "to_espocrm": sorted(plan.to_espo) if plan else [],
        "conflicts": sorted(c.field for c in plan.conflicts) if plan else [],
    }


async def sync_one(
    espo: EspoListingApi,
    engine: SyncEngine,
    *,
    record_id: str | None = None,
    betnr: int | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """`sync <id>` / `sync --betnr N`: sync now (as an operator: parked records are requeued),
    or with `dry_run` return the field-by-field plan and write nothing."""
    rid = await resolve_record(espo, record_id, betnr)
    if dry_run:
        return {"dryRun": True, **plan_dict(await engine.plan_record(rid, Trigger.MANUAL))}
    outcome = await engine.sync_record(rid, Trigger.MANUAL)
    log.info("ops sync of %s: %s", rid, outcome.result.value)
    return {"dryRun": False, **outcome_dict(outcome)}


# --------------------------------------------------------------------------- retry failed


async def list_failed(
    espo: EspoListingApi, statuses: tuple[SyncStatus, ...] = RETRYABLE
) -> list[dict[str, Any]]:
    return [
        r
        async for r in espo.iterate(
            ENTITY,
            where=[{"type": "in", "attribute": SYNC_STATUS, "value": [s.value for s in statuses]}],
            select=f"id,{SYNC_STATUS},{SYNC_RETRY_COUNT}",
        )
    ]


async def requeue_failed(
    espo: EspoListingApi,
    engine: SyncEngine,
    *,
    dry_run: bool = False,
    statuses: tuple[SyncStatus, ...] = RETRYABLE,
    on_progress: Callable[[int], Any] | None = None,
) -> dict[str, Any]:
    """Set failed / permanently_failed records to pending_sync (retry count reset), each under
    its record lock through the state machine. The caller then syncs them (CLI) or emits them
    (API step); the sweep would pick them up anyway. A record whose status changed since the
    listing (a person excluded it, a sync fixed it) is left as it is now, under `moved`."""
    from services.ops.answers import reported

    with reported("retry of the failed records"):
        rows = await list_failed(espo, statuses)
        report: dict[str, Any] = {"dryRun": dry_run, "found": len(rows), "by_status": {}}
        report.update(requeued=[], busy=[], moved=[])
        for row in rows:
            rid, status = str(row["id"]), SyncStatus.parse(row.get(SYNC_STATUS))
            report["by_status"][status.value] = report["by_status"].get(status.value, 0) + 1
            transition(status, SyncStatus.PENDING_SYNC)
            kept = "requeued" if dry_run else await _requeue_one(espo, engine, rid, statuses)
            report[kept].append(rid)
            if kept == "requeued" and not dry_run and on_progress:
                on_progress(1)
    return report


async def _requeue_one(
    espo: EspoListingApi, engine: SyncEngine, rid: str, statuses: tuple[SyncStatus, ...]
) -> str:
    """Where a listed record goes: "requeued", "busy" (being retried right now) or "moved" (its
    status changed since the listing: read again under the lock, so that a person's exclude
    meanwhile is not overwritten)."""
    async with engine.locks.holding_if_free(rid) as lease:
        if lease is None:
            return "busy"
        status = SyncStatus.parse((await espo.get(ENTITY, rid)).get(SYNC_STATUS))
        if status not in statuses:
            return "moved"
        target = transition(status, SyncStatus.PENDING_SYNC)
        await espo.update(
            ENTITY, rid, {SYNC_STATUS: target.value, SYNC_RETRY_COUNT: 0, SYNC_ERROR_MESSAGE: None}
        )
    return "requeued"


# --------------------------------------------------------------------------- unlock


async def unlock(
    redis: Redis, record_id: str | None = None, *, sweep: bool = False, backfill: bool = False
) -> dict[str, Any]:
    """Release a lock by force. Normally never needed: record locks expire after their TTL
    (the holder renews them while it works), the sweep lock after 10 min, the backfill lock
    after 2 min or at once when its process is gone."""
    from services.ops.answers import reported
    from services.store import keys
    from services.store.lease import force_release

    released: dict[str, bool] = {}
    with reported("unlock"):
        if record_id:
            released[f"record:{record_id}"] = await force_release(redis, keys.record_lock(record_id))
        if sweep:
            released["sweep"] = await force_release(redis, keys.SWEEP_RUNNING)
        if backfill:
            released["backfill"] = await force_release(redis, keys.BACKFILL_RUNNING)
    for name, was in released.items():
        if was:
            log.warning("ops unlock: %s released by force", name)
    return {"released": released}


# --------------------------------------------------------------------------- API step entry points
# Each takes the opened runtime (or the part of it it needs) and the request body; the step
# opens the runtime (services/intake/ops_api.py `answer`) and answers an OperationError's status.


async def sync_record_request(rt: Runtime, body: Any) -> dict[str, Any]:
    """`POST /vmh/beteiligte/sync/record`: see `parse_record_request` and `sync_one`."""
    request = parse_record_request(body)
    return await sync_one(
        rt.espo, rt.engine, record_id=request.record_id, betnr=request.betnr, dry_run=request.dry_run
    )


async def retry_failed_request(rt: Runtime, body: Any, emit: Emit) -> dict[str, Any]:
    """`POST /vmh/beteiligte/sync/retry-failed`: requeue, then emit batched sync checks (the
    Motia workers sync them; the sweep would pick them up anyway)."""
    from services.events import sync_check
    from services.sync.dispatch import chunk

    body = body if body is not None else {}
    if not isinstance(body, Mapping):
        raise OperationError("expected a JSON object")
    dry_run, only_failed = body.get("dryRun", False), body.get("onlyFailed", False)
    if not isinstance(dry_run, bool) or not isinstance(only_failed, bool):
        raise OperationError("dryRun and onlyFailed must be true or false")
    statuses = (SyncStatus.FAILED,) if only_failed else RETRYABLE
    report = await requeue_failed(rt.espo, rt.engine, dry_run=dry_run, statuses=statuses)
    events = 0
    if not dry_run:
        for ids in chunk(report["requeued"]):
            await emit(sync_check(ids, Trigger.SWEEP.value))
            events += 1
    return {**report, "events": events}


async def unlock_request(redis: Redis, body: Any) -> dict[str, Any]:
    """`POST /vmh/beteiligte/sync/unlock` with `{"id": ...}` (record locks only; the sweep and
    backfill locks are released from the CLI)."""
    if not isinstance(body, Mapping) or not isinstance(body.get("id"), str) or not body["id"].strip():
        raise OperationError('expected {"id": "<EspoCRM id>"}')
    return await unlock(redis, body["id"].strip())
