"""GET /vmh/beteiligte/sync/attention: the records that need a person (conflict, failed,
permanently_failed, deleted_in_advoware, excluded, waiting for a system, held deletions), each
with its reason, since when and its actions; the recent conflicts with both values (admin token).
The answer holds personal values (a conflict's values): never logged."""

from services.intake.ops_api import admin_answer, ops_route

config = ops_route("/vmh/beteiligte/sync/attention")


async def handler(req, context, runtime=None):
    from services.ops.console import needs_person

    if runtime is None:  # Motia passes none: the real one (tests hand in theirs)
        from services.runtime import open_runtime as runtime

    return await admin_answer(req, context, needs_person, runtime=runtime)
