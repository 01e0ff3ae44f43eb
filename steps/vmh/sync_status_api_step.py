"""GET /vmh/beteiligte/sync/status: counts per syncStatus, recent failures (admin token)."""

from services.intake.ops_api import admin_answer, ops_route

config = ops_route("/vmh/beteiligte/sync/status")


async def handler(req, context, runtime=None):
    if runtime is None:  # Motia passes none: the real one (tests hand in theirs)
        from services.runtime import open_runtime as runtime
    from services.sync.status import status_report

    return await admin_answer(req, context, lambda rt: status_report(rt.espo, rt.redis), runtime=runtime)
