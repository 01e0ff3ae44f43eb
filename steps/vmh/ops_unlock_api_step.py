"""POST /vmh/beteiligte/sync/unlock: release a record lock by force (admin token).
Body: {"id": "<EspoCRM id>"}. Normally never needed: stale locks expire by themselves."""

from services.intake.auth import UNAUTHORISED, is_authorised
from services.intake.ops_api import admin_token, answer, ops_route

config = ops_route("/vmh/beteiligte/sync/unlock")


async def handler(req, context, runtime=None):
    # `runtime`: Motia passes none (the real services.runtime.open_runtime); tests hand in theirs.
    if not is_authorised(req.get("headers") or {}, admin_token()):
        return UNAUTHORISED
    from services.ops.actions import unlock_request
    from services.runtime import open_runtime

    return await answer(
        context, lambda rt: unlock_request(rt.redis, req.get("body")), runtime=runtime or open_runtime
    )
