"""GET /vmh/metrics: Prometheus text exposition of the sync's counters (admin token)."""

from services.intake.auth import UNAUTHORISED, is_authorised
from services.settings import get_settings

config = {
    "type": "api",
    "name": "OpsMetrics",
    "description": "Prometheus metrics: syncs, conflicts, notices, API calls and latency, queues (admin token)",
    "path": "/vmh/metrics",
    "method": "GET",
    "emits": [],
    "flows": ["vmh-ops"],
}


async def handler(req, context):
    if not is_authorised(req.get("headers") or {}, get_settings().SYNC_ADMIN_TOKEN.get_secret_value()):
        return UNAUTHORISED
    from services.ops.metrics import CONTENT_TYPE
    from services.ops.monitor import metrics_text
    from services.runtime import open_runtime

    async with open_runtime() as rt:
        text = await metrics_text(rt)
    return {"status": 200, "body": text.decode(), "headers": {"Content-Type": CONTENT_TYPE}}
