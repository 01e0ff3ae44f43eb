"""POST /vmh/beteiligte/sync/deletions: the deletion guard's held records (bulk 404); a person
releases them (they sync again) or confirms them as real deletions (admin token).
Body: {"action": "show" | "release" | "confirm"}."""

from services.intake.auth import UNAUTHORISED, is_authorised
from services.intake.ops_api import admin_token, answer, ops_route

config = ops_route("/vmh/beteiligte/sync/deletions")


async def handler(req, context, runtime=None):
    # `runtime`: Motia passes none (the real services.runtime.open_runtime); tests hand in theirs.
    if not is_authorised(req.get("headers") or {}, admin_token()):
        return UNAUTHORISED
    from services.ops.console import deletions_request
    from services.runtime import open_runtime

    return await answer(
        context, lambda rt: deletions_request(rt, req.get("body")), runtime=runtime or open_runtime
    )
