"""The first sync of a pair meets the betnr's claim held by another record's create or link
(services/sync/update.py, `unique_link` under services/sync/claims.py): like a create that meets
a busy claim, the record is left as it is - no attempt counted, no failure, no back-off - and the
next trigger asks again (a reviewer found it counted as a failed attempt with a 10-minute wait)."""

from __future__ import annotations

import pytest

from services.sync.claims import Claims
from services.sync.model import Result, Trigger
from tests.support.runtime import World
from tests.unit.test_concurrent_edits import linked

pytestmark = pytest.mark.world(ESPOCRM_NOTIFY_USER_ID="u1")


async def test_a_busy_betnr_claim_leaves_the_first_sync_of_a_pair_as_it_is(world: World) -> None:
    espo = world.espo
    rid, betnr = await linked(world)
    await world.redis.flushall()  # no snapshot: the next sync is the pair's first, it checks the betnr
    espo.edit(rid, firstName="Käthe")
    before = dict(espo.records[rid])
    other = Claims(world.redis, 30)
    async with other.hold(betnrs=[betnr]):  # another record's create links this betnr right now
        world.engine.linker.claims = Claims(world.redis, 30, wait_seconds=0.1)
        out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.SKIPPED and "being created or linked" in (out.reason or "")
    after = espo.records[rid]
    assert after["syncStatus"] == before["syncStatus"] and int(after.get("syncRetryCount") or 0) == 0
    assert world.advo.records[betnr]["vorname"] != "Käthe"  # nothing written
    out = await world.engine.sync_record(rid, Trigger.SWEEP)  # the claim is free again
    assert out.result is Result.UPDATED and world.advo.records[betnr]["vorname"] == "Käthe"
