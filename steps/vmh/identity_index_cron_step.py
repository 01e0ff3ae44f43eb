"""Every minute: probe a system whose circuit breaker is open and release the records that waited
for it (services/sync/breaker.py), then build the identity index if it is missing (first start, or
Redis lost it).

With no breaker open and the index ready this costs a few Redis reads. Until the index is ready,
creates in Advoware wait (the records stay pending_sync); when the build completes a sweep runs at
once and sends them.
"""

from services.events import SYNC_CHECK_TOPIC
from services.logbridge import motia_logging
from services.sync.sweep_runner import run_breaker_release, run_index_build

config = {
    "type": "cron",
    "name": "IdentityIndexBuild",
    "description": "Probes an unavailable system and releases the records that waited for it; builds the Advoware identity index on first start and after Redis lost it",
    "cron": "* * * * *",
    "emits": [SYNC_CHECK_TOPIC],
    "flows": ["vmh-ops"],
}


async def handler(context):
    from services.runtime import open_runtime

    with motia_logging(context.logger):
        released = await run_breaker_release(context.emit, runtime=open_runtime)
        summary = await run_index_build(context.emit, runtime=open_runtime)
    if released != {"released": 0}:
        context.logger.info("circuit breakers", released)
    if summary.get("identity_index") != "ready":
        context.logger.info("identity index", summary)
