"""GET /vmh/health: 200 healthy / 503 unhealthy for anyone (load balancers, uptime checks);
with the admin token the per-check detail (docs/operations.md)."""

from services.intake.auth import is_authorised
from services.intake.ops_api import ops_route

config = ops_route("/vmh/health")

UNHEALTHY = {"status": 503, "body": {"healthy": False}}


async def handler(req, context, runtime=None):
    from services.errors import ConfigurationError
    from services.logbridge import motia_logging
    from services.settings import get_settings

    try:
        settings = get_settings()
    except ConfigurationError:
        return UNHEALTHY  # the detail (which variable) is for the operator's console, not the probe
    authorised = is_authorised(req.get("headers") or {}, settings.SYNC_ADMIN_TOKEN.get_secret_value())
    from services.ops.monitor import cached_health, check

    if runtime is None:  # Motia passes none: the real one (tests hand in theirs)
        from services.runtime import open_runtime as runtime

    with motia_logging(context.logger):
        async with runtime(settings) as rt:
            healthy = None if authorised else await cached_health(rt.redis)
            report = None
            if healthy is None:
                report = await check(rt)
                healthy = report.healthy
    status = 200 if healthy else 503
    if authorised and report is not None:
        return {"status": status, "body": report.as_dict()}
    return {"status": status, "body": {"healthy": healthy}}
