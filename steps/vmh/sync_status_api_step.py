"""GET /vmh/beteiligte/sync/status: counts per syncStatus, recent failures (admin token)."""

from services.intake.auth import UNAUTHORISED, is_authorised
from services.settings import get_settings

config = {
    "type": "api",
    "name": "BeteiligteSyncStatus",
    "description": "Counts per syncStatus, oldest pending work, recent failures (admin token)",
    "path": "/vmh/beteiligte/sync/status",
    "method": "GET",
    "emits": [],
    "flows": ["vmh-ops"],
}


async def handler(req, context):
    if not is_authorised(req.get("headers") or {}, get_settings().SYNC_ADMIN_TOKEN.get_secret_value()):
        return UNAUTHORISED
    from services.runtime import open_runtime
    from services.sync.status import status_report

    async with open_runtime() as rt:
        report = await status_report(rt.espo, rt.redis)
    return {"status": 200, "body": report}
