"""POST /vmh/beteiligte/sync/retry-failed: requeue failed / permanently_failed records and
emit them as sync checks (admin token). Body (optional): {"dryRun": true, "onlyFailed": true}."""

from services.intake.auth import UNAUTHORISED, is_authorised
from services.settings import get_settings
from services.sync.sweep_runner import SYNC_CHECK_TOPIC

config = {
    "type": "api",
    "name": "BeteiligteRetryFailed",
    "description": "Requeues failed and permanently_failed records and emits sync checks (admin token)",
    "path": "/vmh/beteiligte/sync/retry-failed",
    "method": "POST",
    "emits": [SYNC_CHECK_TOPIC],
    "flows": ["vmh-ops"],
}


async def handler(req, context):
    if not is_authorised(req.get("headers") or {}, get_settings().SYNC_ADMIN_TOKEN.get_secret_value()):
        return UNAUTHORISED
    from services.logbridge import motia_logging
    from services.ops.actions import OpsError, retry_failed_request

    try:
        with motia_logging(context.logger):
            body = await retry_failed_request(req.get("body"), context.emit)
    except OpsError as exc:
        return {"status": exc.status, "body": {"error": str(exc)}}
    return {"status": 200, "body": body}
