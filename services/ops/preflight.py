"""`python -m services.ops.preflight`: the start-up check of the notice channel (`make serve`
runs it after the settings check). Prints one line naming what is missing; a broken channel
does not stop the service (the sync works, notices wait in the outbox), so the exit status is
0 unless the settings themselves are invalid (2)."""

from __future__ import annotations

import asyncio
import sys


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


def main() -> int:
    from services.errors import ConfigurationError

    try:
        problems = asyncio.run(check_notices())
    except ConfigurationError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except Exception as exc:  # Redis or EspoCRM not reachable at start: say so, start anyway
        print(
            f"notices: not checked ({type(exc).__name__}); /vmh/health shows the channel later",
            file=sys.stderr,
        )
        return 0
    for problem in problems:
        print(
            f"notices: WARNING - {problem}; notices wait in the outbox until this is fixed", file=sys.stderr
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
