"""POST /vmh/beteiligte/sync/unlock: release a record lock by force (admin token).
Body: {"id": "<EspoCRM id>"}. Normally never needed: stale locks expire by themselves."""

from services.intake.ops_api import admin_answer, ops_route

config = ops_route("/vmh/beteiligte/sync/unlock")


async def handler(req, context, runtime=None):
    from services.ops.actions import unlock_request

    if runtime is None:  # Motia passes none: the real one (tests hand in theirs)
        from services.runtime import open_runtime as runtime

    return await admin_answer(
        req, context, lambda rt: unlock_request(rt.redis, req.get("body")), runtime=runtime
    )
