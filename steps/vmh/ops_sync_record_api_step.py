"""POST /vmh/beteiligte/sync/record: sync one record now, or return its plan (admin token).

Body: {"id": "<EspoCRM id>"} or {"betnr": N}; "dryRun": true returns the field-by-field plan
and writes nothing."""

from services.intake.auth import UNAUTHORISED, is_authorised
from services.settings import get_settings

config = {
    "type": "api",
    "name": "BeteiligteSyncRecord",
    "description": "Sync one record now by EspoCRM id or betnr; dryRun returns the plan (admin token)",
    "path": "/vmh/beteiligte/sync/record",
    "method": "POST",
    "emits": [],
    "flows": ["vmh-ops"],
}


async def handler(req, context):
    if not is_authorised(req.get("headers") or {}, get_settings().SYNC_ADMIN_TOKEN.get_secret_value()):
        return UNAUTHORISED
    from services.logbridge import motia_logging
    from services.ops.actions import OpsError, parse_record_request, sync_one
    from services.runtime import open_runtime

    try:
        request = parse_record_request(req.get("body"))
        with motia_logging(context.logger):
            async with open_runtime() as rt:
                body = await sync_one(
                    rt.espo,
                    rt.engine,
                    record_id=request.record_id,
                    betnr=request.betnr,
                    dry_run=request.dry_run,
                )
    except OpsError as exc:
        return {"status": exc.status, "body": {"error": str(exc)}}
    return {"status": 200, "body": body}
