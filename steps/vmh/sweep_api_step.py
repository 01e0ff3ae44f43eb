"""POST /vmh/beteiligte/sync/sweep: run the sweep now (admin token required)."""

from services.intake.auth import UNAUTHORISED, is_authorised
from services.logbridge import motia_logging
from services.settings import get_settings
from services.sync.sweep_runner import SYNC_CHECK_TOPIC, run_sweep

config = {
    "type": "api",
    "name": "BeteiligteSweepNow",
    "description": "Sweep now: the 15-minute check on demand (admin token)",
    "path": "/vmh/beteiligte/sync/sweep",
    "method": "POST",
    "emits": [SYNC_CHECK_TOPIC],
    "flows": ["vmh"],
}


async def handler(req, context):
    if not is_authorised(req.get("headers") or {}, get_settings().SYNC_ADMIN_TOKEN.get_secret_value()):
        return UNAUTHORISED
    with motia_logging(context.logger):
        summary = await run_sweep(context.emit)
    return {"status": 200, "body": summary}
