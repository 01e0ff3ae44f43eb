"""POST /vmh/beteiligte/sync/exclude: a person excludes a record from the sync, or includes it
again (requeued and synced at once) (admin token). Body: {"id": "<EspoCRM id>", "excluded": true}."""

from services.intake.auth import UNAUTHORISED, is_authorised
from services.intake.ops_api import admin_token, answer, ops_route

config = ops_route("/vmh/beteiligte/sync/exclude")


async def handler(req, context, runtime=None):
    # `runtime`: Motia passes none (the real services.runtime.open_runtime); tests hand in theirs.
    if not is_authorised(req.get("headers") or {}, admin_token()):
        return UNAUTHORISED
    from services.ops.console import exclude_request
    from services.runtime import open_runtime

    return await answer(
        context, lambda rt: exclude_request(rt, req.get("body")), runtime=runtime or open_runtime
    )
