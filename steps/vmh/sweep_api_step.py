"""POST /vmh/beteiligte/sync/sweep: run the sweep now (admin token required)."""

from services.events import SYNC_CHECK_TOPIC
from services.intake.auth import UNAUTHORISED, is_authorised
from services.intake.ops_api import admin_token, ops_route
from services.logbridge import motia_logging
from services.sync.sweep_runner import run_sweep

config = ops_route("/vmh/beteiligte/sync/sweep", emits=[SYNC_CHECK_TOPIC])


async def handler(req, context, runtime=None):
    # `runtime`: Motia passes none (the real services.runtime.open_runtime); tests hand in theirs.
    if not is_authorised(req.get("headers") or {}, admin_token()):
        return UNAUTHORISED
    from services.runtime import open_runtime

    with motia_logging(context.logger):
        summary = await run_sweep(context.emit, runtime=runtime or open_runtime)
    return {"status": 200, "body": summary}
