"""POST /vmh/beteiligte/sync/record: sync one record now, or return its plan (admin token).

Body: {"id": "<EspoCRM id>"} or {"betnr": N}; "dryRun": true returns the field-by-field plan
and writes nothing."""

from services.intake.auth import UNAUTHORISED, is_authorised
from services.intake.ops_api import admin_token, answer, ops_route

config = ops_route("/vmh/beteiligte/sync/record")


async def handler(req, context, runtime=None):
    # `runtime`: Motia passes none (the real services.runtime.open_runtime); tests hand in theirs.
    if not is_authorised(req.get("headers") or {}, admin_token()):
        return UNAUTHORISED
    from services.ops.actions import sync_record_request
    from services.runtime import open_runtime

    return await answer(
        context, lambda rt: sync_record_request(rt, req.get("body")), runtime=runtime or open_runtime
    )
