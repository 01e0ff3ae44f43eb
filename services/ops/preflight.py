"""`python -m services.ops.preflight`: the start-up checks `make serve` runs after the settings
check, each problem one line with its fix:

- EspoCRM's set-up (services/ops/espocrm_check.py): what would make writes fail (the entity, a
  field, an enum value, a type, a length) stops the start with exit status 1; the rest warns.
- The notice channel: a broken one does not stop the service (the sync works, notices wait in
  the outbox).
- Advoware: `ADVOWARE_CHECK` below is where the read-only check of the connected server
  (`check-advoware`) is called once it exists.

EspoCRM or Redis not reachable at start: said, and the service starts anyway (/vmh/health shows
it later). Exit 2: the settings themselves are invalid.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.ops.espocrm_check import Problem

EXIT_OK, EXIT_WRITES_FAIL, EXIT_CONFIG = 0, 1, 2


async def check_espocrm_setup() -> list[Problem]:
    from services.espocrm.client import EspoCrmClient
    from services.ops.espocrm_check import check_for
    from services.settings import get_settings

    settings = get_settings()
    async with EspoCrmClient(settings) as espo:
        return await check_for(espo, settings)


async def check_notices() -> list[str]:
    from services.espocrm.client import EspoCrmClient
    from services.runtime import open_redis
    from services.settings import get_settings
    from services.sync.notify import Notifier

    settings = get_settings()
    async with open_redis(settings) as redis, EspoCrmClient(settings) as espo:
        notifier = Notifier(espo, redis, settings.ESPOCRM_NOTIFY_USER_ID, settings.ESPOCRM_NOTIFY_USER_NAME)
        problems = await notifier.check_channel()
        if not problems:
            print(f"notices: ok (stream posts mention @{await notifier.user_name()})")
        return problems


def espocrm_preflight() -> int:
    """Print EspoCRM's set-up problems; EXIT_WRITES_FAIL when one would make writes fail."""
    from services.ops.espocrm_check import FAIL

    try:
        problems = asyncio.run(check_espocrm_setup())
    except Exception as exc:  # not reachable, key refused: the health check reports it later
        print(
            f"espocrm: set-up not checked ({type(exc).__name__}); /vmh/health shows it later", file=sys.stderr
        )
        return EXIT_OK
    for problem in problems:
        label = "ERROR" if problem.level == FAIL else "WARNING"
        print(f"espocrm: {label} - {problem.line()}", file=sys.stderr)
    if any(p.level == FAIL for p in problems):
        print("espocrm: not starting - syncs would fail writing to EspoCRM (see above)", file=sys.stderr)
        return EXIT_WRITES_FAIL
    if not problems:
        print("espocrm: set up as the service needs it")
    return EXIT_OK


def notices_preflight() -> None:
    try:
        problems = asyncio.run(check_notices())
    except Exception as exc:  # Redis or EspoCRM not reachable at start: say so, start anyway
        print(
            f"notices: not checked ({type(exc).__name__}); /vmh/health shows the channel later",
            file=sys.stderr,
        )
        return
    for problem in problems:
        print(
            f"notices: WARNING - {problem}; notices wait in the outbox until this is fixed", file=sys.stderr
        )


# The Advoware check (issue 22, `check-advoware`) is built separately; once it exists its
# preflight entry is called here: a function returning an exit status like espocrm_preflight.
ADVOWARE_CHECK: Callable[[], int] | None = None


def main() -> int:
    from services.errors import ConfigurationError
    from services.settings import get_settings

    try:
        get_settings()
    except ConfigurationError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    status = espocrm_preflight()
    notices_preflight()
    if ADVOWARE_CHECK is not None:
        status = max(status, ADVOWARE_CHECK())
    return status


if __name__ == "__main__":
    raise SystemExit(main())
