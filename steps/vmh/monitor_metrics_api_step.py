"""GET /vmh/metrics: Prometheus text exposition of the sync's counters (admin token)."""

from services.intake.auth import UNAUTHORISED, is_authorised
from services.intake.ops_api import admin_token, answer, ops_route

config = ops_route("/vmh/metrics")


async def handler(req, context, runtime=None):
    # `runtime`: Motia passes none (the real services.runtime.open_runtime); tests hand in theirs.
    if not is_authorised(req.get("headers") or {}, admin_token()):
        return UNAUTHORISED
    from services.ops.metrics import CONTENT_TYPE
    from services.ops.monitor import metrics_text
    from services.runtime import open_runtime

    return await answer(
        context, metrics_text, headers={"Content-Type": CONTENT_TYPE}, runtime=runtime or open_runtime
    )
