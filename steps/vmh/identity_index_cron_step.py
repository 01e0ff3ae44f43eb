"""Every minute: build the identity index if it is missing (first start, or Redis lost it).

When it is ready this costs one Redis read. Until it is, creates in Advoware wait (the records stay
pending_sync); when the build completes a sweep runs at once and sends them.
"""

from services.events import SYNC_CHECK_TOPIC
from services.logbridge import motia_logging
from services.sync.sweep_runner import run_index_build

config = {
    "type": "cron",
    "name": "IdentityIndexBuild",
    "description": "Builds the Advoware identity index on first start and after Redis lost it",
    "cron": "* * * * *",
    "emits": [SYNC_CHECK_TOPIC],
    "flows": ["vmh-ops"],
}


async def handler(context):
    from services.runtime import open_runtime

    with motia_logging(context.logger):
        summary = await run_index_build(context.emit, runtime=open_runtime)
    if summary.get("identity_index") != "ready":
        context.logger.info("identity index", summary)
