"""GET /vmh/beteiligte/sync/history?id=<EspoCRM id> (or ?betnr=N): what the sync did to one
record, newest first (admin token). The entries hold personal values: never logged."""

from services.intake.auth import UNAUTHORISED, is_authorised
from services.intake.ops_api import admin_token, answer, ops_route

config = ops_route("/vmh/beteiligte/sync/history")


async def handler(req, context, runtime=None):
    # `runtime`: Motia passes none (the real services.runtime.open_runtime); tests hand in theirs.
    if not is_authorised(req.get("headers") or {}, admin_token()):
        return UNAUTHORISED
    from services.ops.monitor import history_request
    from services.runtime import open_runtime

    return await answer(
        context, lambda rt: history_request(rt, req.get("queryParams") or {}), runtime=runtime or open_runtime
    )
