"""POST /vmh/beteiligte/sync/record: sync one record now, or return its plan (admin token).

Body: {"id": "<EspoCRM id>"} or {"betnr": N}; "dryRun": true returns the field-by-field plan
and writes nothing."""

from services.intake.ops_api import admin_answer, ops_route

config = ops_route("/vmh/beteiligte/sync/record")


async def handler(req, context, runtime=None):
    from services.ops.actions import sync_record_request

    if runtime is None:  # Motia passes none: the real one (tests hand in theirs)
        from services.runtime import open_runtime as runtime

    return await admin_answer(
        req, context, lambda rt: sync_record_request(rt, req.get("body")), runtime=runtime
    )
