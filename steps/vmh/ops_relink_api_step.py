"""POST /vmh/beteiligte/sync/relink: link a record to another Advoware party and sync it now
(admin token). Body: {"id": "<EspoCRM id>", "betnr": N}. The same as `services.ops relink`."""

from services.intake.ops_api import admin_answer, ops_route

config = ops_route("/vmh/beteiligte/sync/relink")


async def handler(req, context, runtime=None):
    from services.ops.relink import relink_request

    if runtime is None:  # Motia passes none: the real one (tests hand in theirs)
        from services.runtime import open_runtime as runtime

    return await admin_answer(req, context, lambda rt: relink_request(rt, req.get("body")), runtime=runtime)
