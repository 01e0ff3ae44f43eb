"""The operator's console (the Workbench's "Sync" tab, plugins/sync-console): the records that
need a person, why and since when, with the actions that exist for each; the recent conflicts
with both values; a person's exclude / include; the held deletions' way out.

Each function returns what the ops API steps answer unchanged (the console's data routes call
those steps, so the page shows exactly what the ops functions return). Reasons come from the
service's own words (`syncErrorMessage`, breaker and deletion-guard state); a conflict's values
are personal data: answered to an authenticated operator, never logged.

Which actions a record offers (`actions_for`), by why it waits for a person:

| kind                  | reason shown                          | actions                          |
|-----------------------|---------------------------------------|----------------------------------|
| `conflict`            | syncErrorMessage (held duplicate, ...) | sync, relink, unlock, exclude    |
| `failed`              | syncErrorMessage                      | sync, unlock, exclude            |
| `permanently_failed`  | syncErrorMessage                      | sync, relink, exclude            |
| `deleted_in_advoware` | syncErrorMessage / the missing betnr  | relink, sync, exclude            |
| `excluded`            | excluded by a person                  | include                          |
| `waiting`             | the open breaker's reason             | sync, unlock                     |
| `held_deletion`       | the deletion guard's reason           | release, confirm (all held ones) |

A person's decisions at their edges (tests/unit/test_ops_edges.py; failures answered as
services/ops/answers.py says, never an unhandled error):

| action   | moment                                   | outcome                                            |
|----------|------------------------------------------|----------------------------------------------------|
| exclude  | the EspoCRM write's answer is lost       | 503 "may have been carried out"; a repeat answers excluded (was: excluded) |
| exclude  | a person saves the record meanwhile      | the edit stays (only syncStatus is written)        |
| include  | EspoCRM 409 on the write                 | 409 "saved just now; try again"; still excluded, include again |
| include  | the write's answer is lost               | 503; a repeat answers 409 "pending_sync, not excluded": the sweep syncs it |
| exclude  | Redis emptied afterwards                 | stays excluded (the status lives in EspoCRM)       |
| include  | Advoware down now / a minute ago         | pending_sync, waiting for Advoware: the breaker's probe releases and syncs it |
| both     | EspoCRM or Redis down now                | 503, nothing written                               |
| release  | Advoware down now                        | the guard closes; the records wait for Advoware (listed as `waiting`); a repeat finds none held |
| release  | Redis down now                           | 503; the records stay held for the next release    |

"since": the record's last change in EspoCRM (its status was written then), for a waiting record
the time it started waiting, for a held deletion the time the guard tripped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from services.errors import NotFoundError, OperationError
from services.espocrm.fields import SYNC_ERROR_MESSAGE, SYNC_STATUS
from services.store.counters import EventKind
from services.sync.breaker import SYSTEMS
from services.sync.model import ENTITY, Trigger
from services.sync.states import IllegalTransition, SyncStatus, transition

if TYPE_CHECKING:
    from services.runtime import Runtime
    from services.sync.breaker import BreakerStates
    from services.sync.deletions import DeletionGuard

log = logging.getLogger(__name__)

NEEDS_PERSON = (
    SyncStatus.CONFLICT,
    SyncStatus.FAILED,
    SyncStatus.PERMANENTLY_FAILED,
    SyncStatus.DELETED_IN_ADVOWARE,
    SyncStatus.EXCLUDED,
)
LIST_LIMIT = 200  # one page of the console; the counts per syncStatus say when there are more
RECENT_CONFLICTS = 20

ACTIONS: dict[str, tuple[str, ...]] = {
    SyncStatus.CONFLICT.value: ("sync", "relink", "unlock", "exclude"),
    SyncStatus.FAILED.value: ("sync", "unlock", "exclude"),
    SyncStatus.PERMANENTLY_FAILED.value: ("sync", "relink", "exclude"),
    SyncStatus.DELETED_IN_ADVOWARE.value: ("relink", "sync", "exclude"),
    SyncStatus.EXCLUDED.value: ("include",),
    "waiting": ("sync", "unlock"),
    "held_deletion": ("release", "confirm"),
}


def actions_for(kind: str) -> tuple[str, ...]:
    """The rules table in the module doc; nothing for a kind it does not know."""
    return ACTIONS.get(kind, ())


def _item(kind: str, record_id: str, reason: str | None, since: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "id": record_id,
        "kind": kind,
        "reason": reason or "",
        "since": since,
        "actions": list(actions_for(kind)),
        **extra,
    }


def _espo_time(raw: Any) -> str | None:
    """EspoCRM's 'YYYY-MM-DD HH:MM:SS' (UTC) as ISO 8601, so the page shows one format."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return datetime.fromisoformat(raw.replace(" ", "T")).replace(tzinfo=UTC).isoformat()
    except ValueError:
        return raw


async def _parked(rt: Runtime) -> tuple[int, list[dict[str, Any]]]:
    total, rows = await rt.espo.list(
        ENTITY,
        where=[{"type": "in", "attribute": SYNC_STATUS, "value": [s.value for s in NEEDS_PERSON]}],
        select=f"id,{SYNC_STATUS},{SYNC_ERROR_MESSAGE},modifiedAt,betnr",
        order_by="modifiedAt",
        order="asc",
        max_size=LIST_LIMIT,
    )
    items = []
    for row in rows:
        kind = str(row.get(SYNC_STATUS))
        reason = row.get(SYNC_ERROR_MESSAGE)
        if kind == SyncStatus.EXCLUDED.value and not reason:
            reason = "excluded from the sync by a person"
        items.append(
            _item(kind, str(row["id"]), reason, _espo_time(row.get("modifiedAt")), betnr=row.get("betnr"))
        )
    return int(total), items


async def _waiting(breakers: BreakerStates) -> list[dict[str, Any]]:
    """Records held by an open (or just closed) breaker until their system answers again."""
    states = await breakers.open_states()
    items = []
    for system in SYSTEMS:
        state = states.get(system.value)
        why = f"waiting for {system.value}" + (f": {state.reason}" if state else "")
        for rid, score in await breakers.held(system, LIST_LIMIT):
            since = datetime.fromtimestamp(score, tz=UTC).isoformat()
            items.append(_item("waiting", rid, why, since, system=system.value))
    return items


async def _held_deletions(guard: DeletionGuard) -> list[dict[str, Any]]:
    state = await guard.state() or {}
    reason = "deletion held (many parties missing at once): " + str(state.get("reason", "guard closed"))
    return [_item("held_deletion", rid, reason, state.get("since")) for rid in await guard.held()]


async def needs_person(rt: Runtime) -> dict[str, Any]:
    """`GET /vmh/beteiligte/sync/attention`: every record that waits for a person (module doc),
    the recent conflicts, and the deletion guard's state."""
    total, parked = await _parked(rt)
    waiting = await _waiting(rt.stores.breakers)
    held = await _held_deletions(rt.deletions)
    return {
        "records": parked + waiting + held,
        "parked_total": total,
        "limit": LIST_LIMIT,
        "deletions": {"held_since": await rt.deletions.state(), "held": len(held)},
        "conflicts": await recent_conflicts(rt),
    }


async def recent_conflicts(rt: Runtime) -> list[dict[str, Any]]:
    """The newest same-field conflicts (from the records' histories), newest first, each with
    both values and whether a restore is still the newest conflict on that field."""
    from services.ops.history import history_for

    history = history_for(rt.redis, rt.settings)
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for event in await rt.stores.recent.read(EventKind.CONFLICT, RECENT_CONFLICTS):
        rid = str(event.get("id"))
        if rid in seen:
            continue
        seen.add(rid)
        newest: set[str] = set()
        for entry in await history.entries(rid):
            for conflict in entry.get("conflicts") or ():
                name = str(conflict.get("field"))
                out.append(
                    {
                        "id": rid,
                        "at": entry.get("at"),
                        "field": name,
                        "espocrm": conflict.get("espocrm"),
                        "advoware_overwritten": conflict.get("advoware_overwritten"),
                        "newest": name not in newest,
                    }
                )
                newest.add(name)
    out.sort(key=lambda c: str(c["at"]), reverse=True)
    return out[:RECENT_CONFLICTS]


# --------------------------------------------------------------------------- a person's decisions


async def set_excluded(rt: Runtime, record_id: str, *, excluded: bool) -> dict[str, Any]:
    """Exclude a record from the sync (any state but syncing), or include it again: requeued as
    pending_sync and synced at once. Through the state machine; recorded in the history. Safe
    to run again (services/ops/answers.py; a second exclude finds the record excluded and
    answers so, a second include finds it no longer excluded: 409 with its status)."""
    from services.ops.actions import outcome_dict
    from services.ops.answers import reported

    with reported(f"{'exclude' if excluded else 'include'} of record {record_id}"):
        async with rt.engine.locks.holding(record_id):
            current = await _write_excluded(rt, record_id, excluded=excluded)
        target = SyncStatus.EXCLUDED if excluded else SyncStatus.PENDING_SYNC
        result: dict[str, Any] = {"id": record_id, SYNC_STATUS: target.value, "was": current.value}
        if not excluded:
            result["sync"] = outcome_dict(await rt.engine.sync_record(record_id, Trigger.MANUAL))
    return result


async def _write_excluded(rt: Runtime, record_id: str, *, excluded: bool) -> SyncStatus:
    """Under the record's lock: the status write and its history entry; the status it had."""
    from services.ops.history import HistoryEntry, history_for

    target = SyncStatus.EXCLUDED if excluded else SyncStatus.PENDING_SYNC
    try:
        record = await rt.espo.get(ENTITY, record_id)
    except NotFoundError:
        raise OperationError(f"no EspoCRM record {record_id}", 404) from None
    current = SyncStatus.parse(record.get(SYNC_STATUS))
    if excluded and current is SyncStatus.EXCLUDED:
        return current  # already excluded (a repeated request, or its answer was lost)
    if not excluded and current is not SyncStatus.EXCLUDED:
        raise OperationError(f"record {record_id} is {current.value}, not excluded", 409)
    try:
        transition(current, target, by_person=True)
    except IllegalTransition:
        raise OperationError(f"record {record_id} is {current.value}; try again in a moment", 409) from None
    await rt.espo.update(ENTITY, record_id, {SYNC_STATUS: target.value, SYNC_ERROR_MESSAGE: None})
    await history_for(rt.redis, rt.settings).add(
        record_id,
        HistoryEntry(
            at=rt.clock().isoformat(),
            trigger="person",
            result="excluded" if excluded else "included",
            betnr=record.get("betnr"),
            reason=f"a person {'excluded the record from' if excluded else 'included the record in'} the sync",
            extra={"decided_by": "person", "was": current.value},
        ),
    )
    log.info("record %s %s by a person (was %s)", record_id, target.value, current.value)
    return current


async def deletions(rt: Runtime, *, release: bool = False, confirm: bool = False) -> dict[str, Any]:
    """The deletion guard's state and held records; with `release` / `confirm` a person's way out
    (services/sync/deletions.py): the held records sync again at once."""
    from services.ops.answers import reported

    guard = rt.deletions
    with reported("release of the held deletions"):
        result: dict[str, Any] = {"held_since": await guard.state(), "held": await guard.held()}
        if release or confirm:
            ids = await guard.release(confirm=confirm)
            outcomes = await rt.engine.sync_many(ids, Trigger.RETRY_NOW) if ids else []
            result["synced"] = {o.record_id: o.result.value for o in outcomes}
    return result


async def exclude_request(rt: Runtime, body: Any) -> dict[str, Any]:
    """`POST /vmh/beteiligte/sync/exclude` with `{"id": "<EspoCRM id>", "excluded": true|false}`."""
    if (
        not isinstance(body, Mapping)
        or not isinstance(body.get("id"), str)
        or not body["id"].strip()
        or not isinstance(body.get("excluded"), bool)
    ):
        raise OperationError('expected {"id": "<EspoCRM id>", "excluded": true|false}')
    return await set_excluded(rt, body["id"].strip(), excluded=body["excluded"])


async def deletions_request(rt: Runtime, body: Any) -> dict[str, Any]:
    """`POST /vmh/beteiligte/sync/deletions` with `{"action": "show" | "release" | "confirm"}`."""
    action = body.get("action") if isinstance(body, Mapping) else None
    if action not in ("show", "release", "confirm"):
        raise OperationError('expected {"action": "show" | "release" | "confirm"}')
    return await deletions(rt, release=action == "release", confirm=action == "confirm")
