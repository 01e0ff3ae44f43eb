"""GET /vmh/beteiligte/sync/history?id=<EspoCRM id> (or ?betnr=N): what the sync did to one
record, newest first (admin token). The entries hold personal values: never logged."""

from services.intake.auth import UNAUTHORISED, is_authorised
from services.settings import get_settings

config = {
    "type": "api",
    "name": "OpsRecordHistory",
    "description": "The last decisions of the sync for one record (admin token)",
    "path": "/vmh/beteiligte/sync/history",
    "method": "GET",
    "emits": [],
    "flows": ["vmh-ops"],
    "queryParams": [
        {"name": "id", "description": "EspoCRM CBeteiligte id"},
        {"name": "betnr", "description": "Advoware betNr (instead of id)"},
    ],
}


def _one(value):
    return value[0] if isinstance(value, list) else value


async def handler(req, context):
    if not is_authorised(req.get("headers") or {}, get_settings().SYNC_ADMIN_TOKEN.get_secret_value()):
        return UNAUTHORISED
    query = req.get("queryParams") or {}
    record_id, betnr = _one(query.get("id")), _one(query.get("betnr"))
    if bool(record_id) == bool(betnr) or (betnr and not str(betnr).isdigit()):
        return {"status": 400, "body": {"error": "give exactly one of ?id=<EspoCRM id> and ?betnr=<number>"}}
    from services.ops.monitor import record_history
    from services.runtime import open_runtime

    async with open_runtime() as rt:
        try:
            rid, entries = await record_history(rt, record_id or None, int(betnr) if betnr else None)
        except LookupError as exc:
            return {"status": 404, "body": {"error": str(exc)}}
    return {"status": 200, "body": {"id": rid, "entries": entries}}
