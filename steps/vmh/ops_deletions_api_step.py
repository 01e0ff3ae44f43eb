"""POST /vmh/beteiligte/sync/deletions: the deletion guard's held records (bulk 404); a person
releases them (they sync again) or confirms them as real deletions (admin token).
Body: {"action": "show" | "release" | "confirm"}."""

from services.intake.ops_api import admin_answer, ops_route

config = ops_route("/vmh/beteiligte/sync/deletions")


async def handler(req, context, runtime=None):
    from services.ops.console import deletions_request

    if runtime is None:  # Motia passes none: the real one (tests hand in theirs)
        from services.runtime import open_runtime as runtime

    return await admin_answer(
        req, context, lambda rt: deletions_request(rt, req.get("body")), runtime=runtime
    )
