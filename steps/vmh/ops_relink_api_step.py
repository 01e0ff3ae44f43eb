"""POST /vmh/beteiligte/sync/relink: link a record to another Advoware party and sync it now
(admin token). Body: {"id": "<EspoCRM id>", "betnr": N}. The same as `services.ops relink`."""

from services.intake.auth import UNAUTHORISED, is_authorised
from services.settings import get_settings

config = {
    "type": "api",
    "name": "BeteiligteRelink",
    "description": "Relink one record to an Advoware betnr and sync it (admin token)",
    "path": "/vmh/beteiligte/sync/relink",
    "method": "POST",
    "emits": [],
    "flows": ["vmh-ops"],
}


def _parse(body):
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"].strip():
        return None
    betnr = body.get("betnr")
    if isinstance(betnr, bool) or not isinstance(betnr, int) or betnr <= 0:
        return None
    return body["id"].strip(), betnr


async def handler(req, context):
    if not is_authorised(req.get("headers") or {}, get_settings().SYNC_ADMIN_TOKEN.get_secret_value()):
        return UNAUTHORISED
    parsed = _parse(req.get("body"))
    if parsed is None:
        return {
            "status": 400,
            "body": {"error": 'body must be {"id": "<EspoCRM id>", "betnr": <positive int>}'},
        }
    from services.logbridge import motia_logging
    from services.ops.actions import OpsError
    from services.ops.relink import relink
    from services.runtime import open_runtime

    try:
        with motia_logging(context.logger):
            async with open_runtime() as rt:
                body = await relink(rt.engine, *parsed)
    except OpsError as exc:
        return {"status": exc.status, "body": {"error": str(exc)}}
    return {"status": 200, "body": body}
