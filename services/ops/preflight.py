"""`python -m services.ops.preflight`: the start-up checks `make serve` runs after the settings
check, each problem one line with its fix:

- EspoCRM's set-up (services/ops/espocrm_check.py): what would make writes fail (the entity, a
  field, an enum value, a type, a length) stops the start with exit status 1; the rest warns.
- The notice channel: a broken one does not stop the service (the sync works, notices wait in
  the outbox).
- Advoware (services/ops/advoware_check.py, `check-advoware`, read-only): an error finding
  stops the start (refused credentials, a listing the adapter cannot read), except Advoware or
  Redis not answering (the circuit breaker waits for them); warnings are printed. The findings
  are kept in Redis, so `status` and `/vmh/health` show them with the time of the check.

EspoCRM or Redis not reachable at start: said, and the service starts anyway (/vmh/health shows
it later). Exit 2: the settings themselves are invalid.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.ops.advoware_check import Finding
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


# Error findings that say "not now" rather than "never": the service starts and waits.
NOT_ANSWERING = ("Advoware does not answer", "unreachable")


async def check_advoware_contract() -> list[Finding]:
    """`check-advoware`'s findings, kept for `status` and `/vmh/health` (best effort)."""
    from datetime import UTC, datetime

    from services.ops.advoware_check import check_configured
    from services.runtime import open_redis
    from services.settings import get_settings
    from services.store.service_records import advoware_check

    settings = get_settings()
    findings = await check_configured(settings)
    record = {"at": datetime.now(UTC).isoformat(), "findings": [f.as_dict() for f in findings]}
    try:
        async with open_redis(settings) as redis:
            await advoware_check(redis).put(record)
    except Exception as exc:  # Redis down: the findings are printed all the same
        print(f"advoware: findings not kept ({type(exc).__name__})", file=sys.stderr)
    return findings


def advoware_preflight() -> int:
    try:
        findings = asyncio.run(check_advoware_contract())
    except Exception as exc:
        print(f"advoware: not checked ({type(exc).__name__}); /vmh/health shows it later", file=sys.stderr)
        return EXIT_OK
    for finding in findings:
        if finding.severity != "info":
            print(f"advoware: {finding.line()}", file=sys.stderr)
    blocking = [f for f in findings if f.severity == "error" and not f.text.startswith(NOT_ANSWERING)]
    if blocking:
        print("advoware: not starting - syncs would fail against this server (see above)", file=sys.stderr)
        return EXIT_WRITES_FAIL
    if not any(f.severity != "info" for f in findings):
        print("advoware: the server sends what the service expects")
    return EXIT_OK


def main() -> int:
    from services.errors import ConfigurationError
    from services.settings import get_settings

    try:
        get_settings()
    except ConfigurationError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    status = max(espocrm_preflight(), advoware_preflight())
    notices_preflight()
    return status


if __name__ == "__main__":
    raise SystemExit(main())
