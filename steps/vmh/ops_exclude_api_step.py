"""POST /vmh/beteiligte/sync/exclude: a person excludes a record from the sync, or includes it
again (requeued and synced at once) (admin token). Body: {"id": "<EspoCRM id>", "excluded": true}."""

from services.intake.ops_api import admin_answer, ops_route

config = ops_route("/vmh/beteiligte/sync/exclude")


async def handler(req, context, runtime=None):
    from services.ops.console import exclude_request

    if runtime is None:  # Motia passes none: the real one (tests hand in theirs)
        from services.runtime import open_runtime as runtime

    return await admin_answer(req, context, lambda rt: exclude_request(rt, req.get("body")), runtime=runtime)
