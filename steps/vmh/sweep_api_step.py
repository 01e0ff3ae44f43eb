"""POST /vmh/beteiligte/sync/sweep: run the sweep now (admin token required)."""

from services.events import SYNC_CHECK_TOPIC
from services.intake.auth import UNAUTHORISED, is_authorised
from services.intake.ops_api import admin_token, ops_route
from services.logbridge import motia_logging
from services.sync.sweep_runner import run_sweep

config = ops_route("/vmh/beteiligte/sync/sweep", emits=[SYNC_CHECK_TOPIC])


async def handler(req, context, runtime=None):
    if not is_authorised(req.get("headers") or {}, admin_token()):
        return UNAUTHORISED
    if runtime is None:  # Motia passes none: the real one (tests hand in theirs)
        from services.runtime import open_runtime as runtime

    with motia_logging(context.logger):
        summary = await run_sweep(context.emit, runtime=runtime)
    return {"status": 200, "body": summary}
