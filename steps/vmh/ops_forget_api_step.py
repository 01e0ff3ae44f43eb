"""POST /vmh/beteiligte/sync/forget: erase the service's copies of one record's personal data
in Redis (admin token). Body: {"id": "<EspoCRM id>"}. EspoCRM and Advoware are not touched."""

from services.intake.ops_api import admin_answer, ops_route

config = ops_route("/vmh/beteiligte/sync/forget")


async def handler(req, context, runtime=None):
    if runtime is None:  # Motia passes none: the real one (tests hand in theirs)
        from services.runtime import open_runtime as runtime
    from services.sync.forget import forget_request

    return await admin_answer(
        req, context, lambda rt: forget_request(rt.engine.locks, req.get("body")), runtime=runtime
    )
