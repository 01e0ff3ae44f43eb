"""POST /vmh/beteiligte/sync/retry-failed: requeue failed / permanently_failed records and
emit them as sync checks (admin token). Body (optional): {"dryRun": true, "onlyFailed": true}."""

from services.events import SYNC_CHECK_TOPIC
from services.intake.auth import UNAUTHORISED, is_authorised
from services.intake.ops_api import admin_token, answer, ops_route

config = ops_route("/vmh/beteiligte/sync/retry-failed", emits=[SYNC_CHECK_TOPIC])


async def handler(req, context, runtime=None):
    # `runtime`: Motia passes none (the real services.runtime.open_runtime); tests hand in theirs.
    if not is_authorised(req.get("headers") or {}, admin_token()):
        return UNAUTHORISED
    from services.ops.actions import retry_failed_request
    from services.runtime import open_runtime

    return await answer(
        context,
        lambda rt: retry_failed_request(rt, req.get("body"), context.emit),
        runtime=runtime or open_runtime,
    )
