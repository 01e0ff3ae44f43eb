"""POST /vmh/beteiligte/sync/unlock: release a record lock by force (admin token).
Body: {"id": "<EspoCRM id>"}. Normally never needed: stale locks expire by themselves."""

from services.intake.auth import UNAUTHORISED, is_authorised
from services.settings import get_settings

config = {
    "type": "api",
    "name": "BeteiligteUnlock",
    "description": "Releases a record lock by force; stale locks recover by themselves (admin token)",
    "path": "/vmh/beteiligte/sync/unlock",
    "method": "POST",
    "emits": [],
    "flows": ["vmh-ops"],
}


async def handler(req, context):
    if not is_authorised(req.get("headers") or {}, get_settings().SYNC_ADMIN_TOKEN.get_secret_value()):
        return UNAUTHORISED
    from services.ops.actions import OpsError, unlock_request

    try:
        body = await unlock_request(req.get("body"))
    except OpsError as exc:
        return {"status": exc.status, "body": {"error": str(exc)}}
    return {"status": 200, "body": body}
