"""POST /vmh/beteiligte/sync/restore: put the Advoware value a conflict overwrote back on both
sides, as a person's decision (admin token). Body: {"id": "<EspoCRM id>", "field": "title"}.
Refused (409, with the reason) when the field changed on either side since the conflict."""

from services.intake.auth import UNAUTHORISED, is_authorised
from services.intake.ops_api import admin_token, answer, ops_route

config = ops_route("/vmh/beteiligte/sync/restore")


async def handler(req, context, runtime=None):
    # `runtime`: Motia passes none (the real services.runtime.open_runtime); tests hand in theirs.
    if not is_authorised(req.get("headers") or {}, admin_token()):
        return UNAUTHORISED
    from services.ops.restore import restore_request
    from services.runtime import open_runtime

    return await answer(
        context, lambda rt: restore_request(rt, req.get("body")), runtime=runtime or open_runtime
    )
