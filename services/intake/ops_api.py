"""What the operators' API steps share: the table of their routes, the admin token they check,
and their answer.

Motia imports every step file to discover its config and again for every request (a fresh
Python process each time), so this module imports nothing heavy at the top: the settings and
the ops actions are imported inside the functions that need them, and the runtime comes from
the step (`answer(…, runtime=open_runtime)`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.runtime import Runtime, RuntimeFactory

OPS_FLOW = "vmh-ops"
# The routes behind the Workbench's Sync tab (plugins/sync-console) and its per-record actions: a
# flow of their own, so each flow fits the Workbench's view with legible labels.
CONSOLE_FLOW = "vmh-console"


@dataclass(frozen=True)
class OpsRoute:
    """One route of the table: what its step's Motia config holds besides the path."""

    method: str
    name: str
    description: str
    flow: str = OPS_FLOW
    query_params: tuple[tuple[str, str], ...] = ()  # (name, description)


# Every operators' route, by path (docs/ops.md, docs/operations.md). All of them but /vmh/health
# answer only with the admin token; /vmh/health without it says only healthy or not.
ROUTES: dict[str, OpsRoute] = {
    "/vmh/health": OpsRoute(
        "GET", "OpsHealth", "200/503 without credentials; per-check detail with the admin token"
    ),
    "/vmh/metrics": OpsRoute(
        "GET",
        "OpsMetrics",
        "Prometheus metrics: syncs, conflicts, notices, API calls and latency, queues (admin token)",
    ),
    "/vmh/beteiligte/sync/history": OpsRoute(
        "GET",
        "OpsRecordHistory",
        "The last decisions of the sync for one record (admin token)",
        query_params=(("id", "EspoCRM CBeteiligte id"), ("betnr", "Advoware betNr (instead of id)")),
    ),
    "/vmh/beteiligte/sync/status": OpsRoute(
        "GET",
        "BeteiligteSyncStatus",
        "Counts per syncStatus, oldest pending work, recent failures (admin token)",
    ),
    "/vmh/beteiligte/sync/record": OpsRoute(
        "POST",
        "BeteiligteSyncRecord",
        "Sync one record now by EspoCRM id or betnr; dryRun returns the plan (admin token)",
    ),
    "/vmh/beteiligte/sync/relink": OpsRoute(
        "POST", "BeteiligteRelink", "Relink one record to an Advoware betnr and sync it (admin token)"
    ),
    "/vmh/beteiligte/sync/retry-failed": OpsRoute(
        "POST",
        "BeteiligteRetryFailed",
        "Requeues failed and permanently_failed records and emits sync checks (admin token)",
    ),
    "/vmh/beteiligte/sync/restore": OpsRoute(
        "POST",
        "BeteiligteRestore",
        "Put the Advoware value a conflict overwrote back on both sides; refused if it changed since (admin token)",
        flow=CONSOLE_FLOW,
    ),
    "/vmh/beteiligte/sync/forget": OpsRoute(
        "POST",
        "BeteiligteForget",
        "Erase the service's copies of one record's personal data in Redis (admin token)",
        flow=CONSOLE_FLOW,
    ),
    "/vmh/beteiligte/sync/attention": OpsRoute(
        "GET",
        "BeteiligteNeedsPerson",
        "The records that need a person, with reason, since and actions; recent conflicts (admin token)",
        flow=CONSOLE_FLOW,
    ),
    "/vmh/beteiligte/sync/exclude": OpsRoute(
        "POST",
        "BeteiligteExclude",
        "A person excludes a record from the sync, or includes it again and syncs it (admin token)",
        flow=CONSOLE_FLOW,
    ),
    "/vmh/beteiligte/sync/deletions": OpsRoute(
        "POST",
        "BeteiligteHeldDeletions",
        "Held deletions (bulk 404): show, release (sync again) or confirm them (admin token)",
        flow=CONSOLE_FLOW,
    ),
    "/vmh/beteiligte/sync/unlock": OpsRoute(
        "POST",
        "BeteiligteUnlock",
        "Releases a record lock by force; stale locks recover by themselves (admin token)",
    ),
    "/vmh/beteiligte/sync/sweep": OpsRoute(
        "POST", "BeteiligteSweepNow", "Sweep now: the 15-minute check on demand (admin token)", flow="vmh"
    ),
}


def ops_route(path: str, *, emits: Sequence[str] = ()) -> dict[str, Any]:
    """The Motia config of the step serving `path` (a key of ROUTES): a plain dict with only the
    keys Motia's strict schema allows (an unknown key makes the step invalid). `emits` is the
    step's own: Motia drops an emit whose topic is not listed."""
    route = ROUTES[path]
    config: dict[str, Any] = {
        "type": "api",
        "name": route.name,
        "description": route.description,
        "path": path,
        "method": route.method,
        "emits": list(emits),
        "flows": [route.flow],
    }
    if route.query_params:
        config["queryParams"] = [{"name": n, "description": d} for n, d in route.query_params]
    return config


def admin_token() -> str:
    """SYNC_ADMIN_TOKEN, for `is_authorised(headers, admin_token())`."""
    from services.settings import get_settings

    return get_settings().SYNC_ADMIN_TOKEN.get_secret_value()


Work = Callable[["Runtime"], Awaitable[Any]]


async def admin_answer(
    req: Mapping[str, Any],
    context: Any,
    work: Work,
    *,
    runtime: RuntimeFactory,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """`answer` for a request that carries the admin token; 401 (and nothing opened) without it."""
    from services.intake.auth import UNAUTHORISED, is_authorised

    if not is_authorised(req.get("headers") or {}, admin_token()):
        return UNAUTHORISED
    return await answer(context, work, runtime=runtime, headers=headers)


async def answer(
    context: Any, work: Work, *, runtime: RuntimeFactory, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Run `work` on a runtime opened from `runtime` (the step's services.runtime.open_runtime),
    its log lines under the request's trace, and answer 200 with what it returns (and
    `headers`), or an `OperationError`'s status and message (any operator's failure: unknown
    record 404, bad input 400, busy 409)."""
    from services.errors import OperationError
    from services.logbridge import motia_logging

    try:
        with motia_logging(context.logger):
            async with runtime() as rt:
                body = await work(rt)
    except OperationError as exc:
        return {"status": exc.status, "body": {"error": str(exc)}}
    response: dict[str, Any] = {"status": 200, "body": body}
    if headers:
        response["headers"] = dict(headers)
    return response
