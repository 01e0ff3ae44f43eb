"""Every 15 minutes: find records that need work and emit batched sync checks."""

from services.events import SYNC_CHECK_TOPIC
from services.logbridge import motia_logging
from services.sync.sweep_runner import run_sweep

config = {
    "type": "cron",
    "name": "BeteiligteSweep",
    "description": "Every 15 minutes: finds parties that still need a sync (new, changed, failed and due again, changed in Advoware)",
    "cron": "*/15 * * * *",
    "emits": [SYNC_CHECK_TOPIC],
    "flows": ["vmh"],
}


async def handler(context):
    from services.runtime import open_runtime

    with motia_logging(context.logger):
        summary = await run_sweep(context.emit, runtime=open_runtime, cron_tick=True)
    context.logger.info("sweep finished", summary)
