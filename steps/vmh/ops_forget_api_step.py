"""POST /vmh/beteiligte/sync/forget: erase the service's copies of one record's personal data
in Redis (admin token). Body: {"id": "<EspoCRM id>"}. EspoCRM and Advoware are not touched."""

from services.intake.auth import UNAUTHORISED, is_authorised
from services.intake.ops_api import admin_token, answer, ops_route

config = ops_route("/vmh/beteiligte/sync/forget")


async def handler(req, context, runtime=None):
    # `runtime`: Motia passes none (the real services.runtime.open_runtime); tests hand in theirs.
    if not is_authorised(req.get("headers") or {}, admin_token()):
        return UNAUTHORISED
    from services.runtime import open_runtime
    from services.sync.forget import forget_request

    return await answer(
        context, lambda rt: forget_request(rt.engine.locks, req.get("body")), runtime=runtime or open_runtime
    )
