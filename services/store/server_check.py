"""Is the Redis server set up the way production needs it? Checked at start-up (`python -m
services.settings`, which `make serve` runs first) and on every sweep (so a service started by
Motia alone, or a server reconfigured later, is reported too).

| finding                                | level   | why                                                  |
|----------------------------------------|---------|------------------------------------------------------|
| unreachable                            | error   | nothing works; webhooks are answered 503 meanwhile   |
| `maxmemory-policy` other than          | error   | a full Redis would silently evict leases (two syncs  |
| `noeviction` (with a `maxmemory` set   |         | of one record at once), create intents (duplicate    |
| or not: the policy applies once one is)|         | parties), queued jobs; `noeviction` refuses writes   |
|                                        |         | instead, which the service reports and retries       |
| no persistence (no AOF, no RDB `save`) | warning | a restart empties Redis: survivable (see             |
|                                        |         | docs/architecture.md, "Redis restarted empty"), but  |
|                                        |         | costs a wider re-read and re-notifies conflicts      |
| no password (`requirepass`/ACL off)    | warning | anyone reaching the port can read synced data        |

`maxmemory-policy` is read from `INFO memory` (allowed where `CONFIG` is renamed or denied, as
in managed Redis); persistence and authentication from `CONFIG GET` when that is allowed (never
`requirepass` itself: only whether the server asks for authentication).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from redis.asyncio import Redis

FIX_POLICY = (
    "set `maxmemory-policy noeviction` in redis.conf (now: `redis-cli CONFIG SET maxmemory-policy "
    "noeviction`; managed Redis: its parameter group)"
)


@dataclass(frozen=True)
class Finding:
    level: Literal["error", "warning"]
    message: str


async def check_server(redis: Redis) -> list[Finding]:
    """What is wrong with the server's configuration (empty: all fine). Raises the client's
    error if Redis cannot be reached."""
    from redis.exceptions import ResponseError

    findings: list[Finding] = []
    try:
        memory = await redis.info("memory")
    except ResponseError:  # INFO denied: the policy cannot be read
        memory = {}
    policy = str(memory.get("maxmemory_policy", "unknown"))
    if policy == "unknown":
        findings.append(
            Finding(
                "warning", f"Redis maxmemory-policy could not be read; it must be noeviction. {FIX_POLICY}"
            )
        )
    elif policy != "noeviction":
        findings.append(
            Finding("error", f"Redis maxmemory-policy is {policy}: keys can be evicted. Fix: {FIX_POLICY}")
        )
    findings.extend(await _persistence_and_auth(redis))
    return findings


async def _persistence_and_auth(redis: Redis) -> list[Finding]:
    from redis.exceptions import ResponseError

    findings: list[Finding] = []
    try:
        config = await redis.config_get("appendonly")
        config.update(await redis.config_get("save"))
    except ResponseError:  # CONFIG renamed or denied (managed Redis): the provider's settings apply
        config = None
    if config is not None and config.get("appendonly") != "yes" and not str(config.get("save", "")).strip():
        findings.append(
            Finding(
                "warning",
                "Redis keeps no data across a restart (appendonly no, no RDB save): set "
                "`appendonly yes` (and keep a `save` schedule) in redis.conf",
            )
        )
    try:
        auth = await _needs_auth(redis)
    except ResponseError:  # ACL denied to this user: it is not the open default user
        auth = True
    if not auth:
        findings.append(
            Finding(
                "warning",
                "Redis asks for no password: set `requirepass` (or ACL users) and put it in REDIS_URL",
            )
        )
    return findings


async def _needs_auth(redis: Redis) -> bool:
    """Whether a client without credentials would be refused (never reads the password)."""
    users = await redis.acl_list()
    # `user default on nopass ...`: the default user logs in without a password.
    return not any(u.startswith("user default on") and " nopass" in u for u in users)


def where(url: str) -> str:
    """host:port/db of a Redis URL, without credentials (for messages)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.hostname or '?'}:{parts.port or 6379}{parts.path or ''}"


async def check_url(url: str) -> list[Finding]:
    """`check_server` for a URL; an unreachable server is an error finding, not an exception."""
    from redis.exceptions import RedisError

    from services.store.connection import connect

    redis = connect(url, timeout=5.0)
    try:
        return await check_server(redis)
    except (RedisError, OSError) as exc:
        return [Finding("error", f"Redis at {where(url)} is unreachable ({type(exc).__name__})")]
    finally:
        await redis.aclose()
