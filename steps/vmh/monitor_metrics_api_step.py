"""GET /vmh/metrics: Prometheus text exposition of the sync's counters (admin token)."""

from services.intake.ops_api import admin_answer, ops_route

config = ops_route("/vmh/metrics")


async def handler(req, context, runtime=None):
    from services.ops.metrics import CONTENT_TYPE
    from services.ops.monitor import metrics_text

    if runtime is None:  # Motia passes none: the real one (tests hand in theirs)
        from services.runtime import open_runtime as runtime

    return await admin_answer(
        req, context, metrics_text, headers={"Content-Type": CONTENT_TYPE}, runtime=runtime
    )
