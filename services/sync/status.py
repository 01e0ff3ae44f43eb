"""The status report shown by `GET /vmh/beteiligte/sync/status` and the ops CLI.
Ids, counts and reasons only: no names or contact data."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from services.espocrm.fields import SYNC_STATUS
from services.store import keys
from services.store.counters import EventKind, Metrics
from services.store.server_check import check_server
from services.store.service_records import JsonRecord, last_sweep
from services.store.watermark import Watermark
from services.sync.breaker import BreakerStates
from services.sync.model import ENTITY
from services.sync.states import SyncStatus
from services.sync.stores import PendingAdvoware, RecentEvents

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from services.sync.ports import EspoListingApi


async def status_report(espo: EspoListingApi, redis: Redis) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for status in SyncStatus:
        total, _ = await espo.list(
            ENTITY,
            where=[{"type": "equals", "attribute": SYNC_STATUS, "value": status.value}],
            select="id",
            max_size=1,
        )
        counts[status.value] = int(total)
    total_unset, _ = await espo.list(
        ENTITY, where=[{"type": "isNull", "attribute": SYNC_STATUS}], select="id", max_size=1
    )
    counts["no_status"] = int(total_unset)
    _, oldest = await espo.list(
        ENTITY,
        where=[
            {
                "type": "in",
                "attribute": SYNC_STATUS,
                "value": [SyncStatus.PENDING_SYNC, SyncStatus.DIRTY, SyncStatus.FAILED],
            }
        ],
        select=f"id,{SYNC_STATUS},modifiedAt",
        order_by="modifiedAt",
        order="asc",
        max_size=5,
    )
    stats = await Metrics(redis).stats()
    return {
        "counts": counts,
        "oldest_pending": [
            {"id": r.get("id"), SYNC_STATUS: r.get(SYNC_STATUS), "since": r.get("modifiedAt")} for r in oldest
        ],
        "recent_failures": list(await RecentEvents(redis).read(EventKind.FAILURE, 20)),
        "recent_conflicts": list(await RecentEvents(redis).read(EventKind.CONFLICT, 20)),
        # Records held for a person by the identity check / betnr uniqueness (reason: ids, betNrs,
        # rules), parties linked instead of created, and writes a system did not fully apply.
        "recent_held": list(await RecentEvents(redis).read(EventKind.HELD, 20)),
        "recent_linked": list(await RecentEvents(redis).read(EventKind.LINKED, 20)),
        "recent_unapplied": list(await RecentEvents(redis).read(EventKind.UNAPPLIED, 20)),
        **await _link_audit(redis),
        "last_sweep": await last_sweep(redis).get(),
        "watermarks": {
            "advoware": await Watermark.advoware(redis).raw(),
            "espocrm": await Watermark.espocrm(redis).raw(),
        },
        "counters": stats,
        # Advoware changes emitted by a sweep whose sync has not finished (re-emitted if stuck).
        "advoware_unfinished": await PendingAdvoware(redis).count(),
        # Per system: open (nothing is sent there until the sweep's probe answers), since,
        # reason and the records waiting to be released.
        "breakers": await BreakerStates(redis).report(),
        "backfill": await _backfill(redis),
        "redis": [asdict(f) for f in await check_server(redis)],
        # Creates in Advoware wait until the identity index is ready (services/sync/identity_index.py).
        "identity_index": await _identity_index(redis),
    }


async def _link_audit(redis: Any) -> dict[str, Any]:
    """The daily "one betnr, one record" check (services/sync/link_audit.py): betnr -> ids."""
    return {
        "recent_duplicate_links": list(await RecentEvents(redis).read(EventKind.DUPLICATE_LINK, 20)),
        "link_audit": await JsonRecord(redis, keys.LINK_AUDIT).get(),
    }


async def _identity_index(redis: Any) -> dict[str, Any]:
    from services.sync.identity_index import IdentityIndex

    state = await IdentityIndex(redis).state()
    return {**asdict(state), "summary": state.describe(), "creates_wait": not state.ready}


async def _backfill(redis: Any) -> dict[str, Any] | None:
    from services.backfill.state import lock_holder, run_state

    state = await run_state(redis)
    holder = await lock_holder(redis)
    if state is None and holder is None:
        return None
    out = dict(state or {})
    out["running"] = holder is not None
    return out
