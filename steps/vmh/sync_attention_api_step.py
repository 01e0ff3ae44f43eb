"""GET /vmh/beteiligte/sync/attention: the records that need a person (conflict, failed,
permanently_failed, deleted_in_advoware, excluded, waiting for a system, held deletions), each
with its reason, since when and its actions; the recent conflicts with both values (admin token).
The answer holds personal values (a conflict's values): never logged."""

from services.intake.auth import UNAUTHORISED, is_authorised
from services.intake.ops_api import admin_token, answer, ops_route

config = ops_route("/vmh/beteiligte/sync/attention")


async def handler(req, context, runtime=None):
    # `runtime`: Motia passes none (the real services.runtime.open_runtime); tests hand in theirs.
    if not is_authorised(req.get("headers") or {}, admin_token()):
        return UNAUTHORISED
    from services.ops.console import needs_person
    from services.runtime import open_runtime

    return await answer(context, needs_person, runtime=runtime or open_runtime)
