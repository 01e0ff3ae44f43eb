"""Every 5 minutes: run the health checks, send/clear alerts, post notices waiting in the outbox."""

from services.logbridge import motia_logging

config = {
    "type": "cron",
    "name": "OpsWatch",
    "description": "Health checks -> alerts (one per condition and one at its end); retries waiting notices",
    "cron": "*/5 * * * *",
    "emits": [],
    "flows": ["vmh-ops"],
}


async def handler(context):
    from services.ops.monitor import check, claim_watch_tick
    from services.runtime import open_runtime

    with motia_logging(context.logger):
        async with open_runtime() as rt:
            if not await claim_watch_tick(rt.redis):
                return  # another instance runs this tick
            report = await check(rt)
    context.logger.info("ops watch", {"healthy": report.healthy})
