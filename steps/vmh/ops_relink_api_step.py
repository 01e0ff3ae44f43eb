"""POST /vmh/beteiligte/sync/relink: link a record to another Advoware party and sync it now
(admin token). Body: {"id": "<EspoCRM id>", "betnr": N}. The same as `services.ops relink`."""

from services.intake.auth import UNAUTHORISED, is_authorised
from services.intake.ops_api import admin_token, answer, ops_route

config = ops_route("/vmh/beteiligte/sync/relink")


async def handler(req, context, runtime=None):
    # `runtime`: Motia passes none (the real services.runtime.open_runtime); tests hand in theirs.
    if not is_authorised(req.get("headers") or {}, admin_token()):
        return UNAUTHORISED
    from services.ops.relink import relink_request
    from services.runtime import open_runtime

    return await answer(
        context, lambda rt: relink_request(rt, req.get("body")), runtime=runtime or open_runtime
    )
