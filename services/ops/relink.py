"""`relink <id> <betnr>`: point an EspoCRM record at another Advoware party on purpose, and sync
the pair at once by the first-sync rules (nothing on either side is lost).

The way out of `deleted_in_advoware` after staff merged parties in Advoware, of a `conflict` held
by the identity check or the betnr uniqueness check once a person knows the right party, and of
any wrong link. The same checks as the live sync: the party must exist in Advoware and must not
be another EspoCRM record's link.

At its edges (tests/unit/test_ops_edges.py; failures answered as services/ops/answers.py says):

| moment                                  | outcome                                                    |
|-----------------------------------------|------------------------------------------------------------|
| the EspoCRM write's answer is lost      | 503 "may have been carried out"; a repeat relinks and syncs the new pair |
| a person saves the record meanwhile     | the edit stays (only betnr / syncStatus are written)       |
| EspoCRM 409 on the write                | 409 "try again"; the record keeps its old betnr            |
| Redis emptied afterwards                | the betnr is still refused to another record (EspoCRM holds the links) |
| Advoware down now                       | 503 before anything is written                             |
| Advoware down after the write           | the pair waits for Advoware (breaker), as any sync         |
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from services.errors import NotFoundError, OperationError
from services.espocrm.fields import SYNC_ERROR_MESSAGE, SYNC_STATUS
from services.ops.actions import outcome_dict
from services.ops.answers import reported
from services.sync.claims import ClaimBusy
from services.sync.model import ENTITY, Trigger
from services.sync.states import IllegalTransition, SyncStatus, transition

if TYPE_CHECKING:
    from services.runtime import Runtime
    from services.sync.engine import SyncEngine

log = logging.getLogger(__name__)

BAD_RELINK_BODY = 'body must be {"id": "<EspoCRM id>", "betnr": <positive int>}'


async def relink(engine: SyncEngine, record_id: str, betnr: int) -> dict[str, Any]:
    with reported(f"relink of record {record_id} to betnr {betnr}"):
        try:
            await engine.systems.advo.get_beteiligter(betnr)
        except NotFoundError:
            raise OperationError(f"betnr {betnr} does not exist in Advoware", 404) from None
        # Under the betnr's claim: a create linking the same betnr right now is not missed.
        try:
            async with engine.linker.claims.hold(betnrs=[betnr]):
                previous = await _point_at(engine, record_id, betnr)
        except ClaimBusy:
            raise OperationError(
                f"betnr {betnr} is being linked right now; try again in a moment", 409
            ) from None
        log.info("relink: record %s -> betnr %s (was %s)", record_id, betnr, previous)
        outcome = await engine.sync_record(record_id, Trigger.MANUAL)
    return {"relinked": True, "previousBetnr": previous, **outcome_dict(outcome)}


async def _point_at(engine: SyncEngine, record_id: str, betnr: int) -> Any:
    """Write `betnr` to the record (requeued as pending_sync) unless another record holds it;
    the betnr it had."""
    others = await engine.linker.other_holders(record_id, betnr)
    if others:
        raise OperationError(
            f"betnr {betnr} is already the link of EspoCRM record(s) {', '.join(others)}", 409
        )
    async with engine.locks.holding(record_id):
        try:
            record = await engine.systems.espo.get(ENTITY, record_id)
        except NotFoundError:
            raise OperationError(f"no EspoCRM record {record_id}", 404) from None
        status = SyncStatus.parse(record.get(SYNC_STATUS))
        patch: dict[str, Any] = {"betnr": betnr, SYNC_ERROR_MESSAGE: None}
        if status is not SyncStatus.PENDING_SYNC:
            try:
                patch[SYNC_STATUS] = transition(status, SyncStatus.PENDING_SYNC).value
            except IllegalTransition:
                raise OperationError(
                    f"record {record_id} is {status.value}; cannot requeue it", 409
                ) from None
        await engine.systems.espo.update(ENTITY, record_id, patch)
        # It belonged to the old pair. Left behind when the write's answer is lost: the planner
        # ignores a snapshot of another betnr (planning.py), and the old pair keeps it when the
        # write was not carried out.
        await engine.snapshots.delete(record_id)
    return record.get("betnr")


async def relink_request(rt: Runtime, body: Any) -> dict[str, Any]:
    """`POST /vmh/beteiligte/sync/relink` with `{"id": "<EspoCRM id>", "betnr": N}`."""
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"].strip():
        raise OperationError(BAD_RELINK_BODY)
    betnr = body.get("betnr")
    if isinstance(betnr, bool) or not isinstance(betnr, int) or betnr <= 0:
        raise OperationError(BAD_RELINK_BODY)
    return await relink(rt.engine, body["id"].strip(), betnr)
