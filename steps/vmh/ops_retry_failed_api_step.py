"""POST /vmh/beteiligte/sync/retry-failed: requeue failed / permanently_failed records and
emit them as sync checks (admin token). Body (optional): {"dryRun": true, "onlyFailed": true}."""

from services.events import SYNC_CHECK_TOPIC
from services.intake.ops_api import admin_answer, ops_route

config = ops_route("/vmh/beteiligte/sync/retry-failed", emits=[SYNC_CHECK_TOPIC])


async def handler(req, context, runtime=None):
    from services.ops.actions import retry_failed_request

    if runtime is None:  # Motia passes none: the real one (tests hand in theirs)
        from services.runtime import open_runtime as runtime

    return await admin_answer(
        req,
        context,
        lambda rt: retry_failed_request(rt, req.get("body"), context.emit),
        runtime=runtime,
    )
