"""POST /vmh/beteiligte/sync/restore: put the Advoware value a conflict overwrote back on both
sides, as a person's decision (admin token). Body: {"id": "<EspoCRM id>", "field": "title"}.
Refused (409, with the reason) when the field changed on either side since the conflict."""

from services.intake.ops_api import admin_answer, ops_route

config = ops_route("/vmh/beteiligte/sync/restore")


async def handler(req, context, runtime=None):
    from services.ops.restore import restore_request

    if runtime is None:  # Motia passes none: the real one (tests hand in theirs)
        from services.runtime import open_runtime as runtime

    return await admin_answer(req, context, lambda rt: restore_request(rt, req.get("body")), runtime=runtime)
