"""GET /vmh/beteiligte/sync/history?id=<EspoCRM id> (or ?betnr=N): what the sync did to one
record, newest first (admin token). The entries hold personal values: never logged."""

from services.intake.ops_api import admin_answer, ops_route

config = ops_route("/vmh/beteiligte/sync/history")


async def handler(req, context, runtime=None):
    from services.ops.monitor import history_request

    if runtime is None:  # Motia passes none: the real one (tests hand in theirs)
        from services.runtime import open_runtime as runtime

    return await admin_answer(
        req, context, lambda rt: history_request(rt, req.get("queryParams") or {}), runtime=runtime
    )
