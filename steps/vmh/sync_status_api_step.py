"""GET /vmh/beteiligte/sync/status: counts per syncStatus, recent failures (admin token)."""

from services.intake.auth import UNAUTHORISED, is_authorised
from services.intake.ops_api import admin_token, answer, ops_route

config = ops_route("/vmh/beteiligte/sync/status")


async def handler(req, context, runtime=None):
    # `runtime`: Motia passes none (the real services.runtime.open_runtime); tests hand in theirs.
    if not is_authorised(req.get("headers") or {}, admin_token()):
        return UNAUTHORISED
    from services.runtime import open_runtime
    from services.sync.status import status_report

    return await answer(context, lambda rt: status_report(rt.espo, rt.redis), runtime=runtime or open_runtime)
