"""`check-advoware` (services/ops/advoware_check.py) against the Advoware simulator in process:
the contract as assumed, and each way a server can differ from it. The app is wrapped to send a
`Date` header, as uvicorn does when the simulator runs as a server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Any
from zoneinfo import ZoneInfo

import fakeredis
import httpx
import pytest

from sandbox import config as cfg
from sandbox.advoware import AdvoSimulator
from services.advoware.client import AdvowareClient
from services.advoware.concurrency import LocalSemaphore
from services.ops.advoware_check import Account, Finding, check_advoware, exit_code
from services.settings import Settings
from tests.support.retry import default_retry

BERLIN, UTC_ZONE = ZoneInfo("Europe/Berlin"), ZoneInfo("UTC")
ACCOUNT = Account(cfg.ADVO_USER, cfg.ADVO_PRODUCT)


def with_date_header(app: Any) -> Any:
    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        async def send_with_date(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message["headers"], (b"date", formatdate(usegmt=True).encode())],
                }
            await send(message)

        await app(scope, receive, send_with_date)

    return wrapped


async def _nosleep(_: float) -> None:
    return None


@pytest.fixture
async def client(advo: AdvoSimulator) -> AsyncIterator[AdvowareClient]:
    advo.admin_reset({"records": 30, "demo": False})
    lines = (line.split("=", 1) for line in cfg.render_env().splitlines() if not line.startswith("#"))
    env: dict[str, Any] = dict(lines)
    env["ADVOWARE_API_BASE_URL"] = env["ADVOWARE_SECURITY_URL"] = "http://advo.test/"
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    c = AdvowareClient(
        Settings(_env_file=None, **env),  # type: ignore[call-arg]
        redis,
        transport=httpx.ASGITransport(app=with_date_header(advo.app)),
        retry=default_retry(sleep=_nosleep),
        limiter=LocalSemaphore(4),
    )
    yield c
    await c.aclose()
    await redis.aclose()


def edit_now(advo: AdvoSimulator) -> None:
    """A person saves a party in Advoware just now (a fresh stamp for the zone check)."""
    betnr = next(iter(advo.store.records))
    advo.store.replace(betnr, {**advo.store.records[betnr], "titel": "Dr."})


def by_topic(findings: list[Finding]) -> dict[str, Finding]:
    return {f.topic: f for f in findings}


async def test_the_contract_as_assumed_has_nothing_to_fix(
    client: AdvowareClient, advo: AdvoSimulator
) -> None:
    edit_now(advo)
    findings = await check_advoware(client, BERLIN, ACCOUNT)
    assert [f for f in findings if f.severity != "info"] == [], [f.line() for f in findings]
    assert "fit ADVOWARE_TIMEZONE=Europe/Berlin" in by_topic(findings)["geaendertAm zone"].text
    assert exit_code(findings) == 0


async def test_pascal_case_and_utc_stamps_are_both_named_with_their_fix(
    client: AdvowareClient, advo: AdvoSimulator
) -> None:
    advo.drift.update({"pascal_case": True, "utc_stamps": True})
    edit_now(advo)
    found = by_topic(await check_advoware(client, BERLIN, ACCOUNT))
    fields, zone = found["fields"], found["geaendertAm zone"]
    assert fields.severity == "warning" and "PascalCase" in fields.text and "BetNr" in fields.text
    assert zone.severity == "warning" and "UTC" in zone.text and zone.fix == "set ADVOWARE_TIMEZONE=UTC"
    # With the setting corrected the zone fits; the casing is still named (the assumption differs).
    print("\n".join(f.line() for f in found.values()))  # shown with -s: what an admin reads
    again = by_topic(await check_advoware(client, UTC_ZONE, ACCOUNT))
    assert again["geaendertAm zone"].severity == "info" and again["fields"].severity == "warning"
    assert exit_code(list(again.values())) == 0  # neither makes a write fail


async def test_local_stamps_read_as_utc_are_named(client: AdvowareClient, advo: AdvoSimulator) -> None:
    edit_now(advo)
    zone = by_topic(await check_advoware(client, UTC_ZONE, ACCOUNT))["geaendertAm zone"]
    assert zone.severity == "warning" and ("UTC+01:00" in zone.text or "UTC+02:00" in zone.text)


async def test_row_id_and_page_cap(client: AdvowareClient, advo: AdvoSimulator) -> None:
    advo.drift.update({"row_id": True, "page_cap": 10})
    found = by_topic(await check_advoware(client, BERLIN, ACCOUNT))
    assert found["rowId"].text.startswith("sent")
    assert found["page size"].severity == "warning" and "capped at 10" in found["page size"].text


async def test_a_server_ignoring_skip_is_an_error(client: AdvowareClient, advo: AdvoSimulator) -> None:
    advo.drift.update({"ignore_skip": True, "page_cap": 10})
    findings = await check_advoware(client, BERLIN, ACCOUNT)
    assert by_topic(findings)["page size"].severity == "error" and exit_code(findings) == 1


async def test_a_refused_login_is_one_error_line_with_its_fix(client: AdvowareClient) -> None:
    client.tokens._password = "wrong"
    findings = await check_advoware(client, BERLIN, ACCOUNT)
    assert len(findings) == 1 and findings[0].severity == "error" and findings[0].topic == "login"
    assert "fix:" in findings[0].line() and exit_code(findings) == 1


async def test_a_user_not_licensed_for_the_product_is_an_error(client: AdvowareClient) -> None:
    assert by_topic(await check_advoware(client, BERLIN, ACCOUNT))["licence"].severity == "info"
    findings = await check_advoware(client, BERLIN, Account("NOBODY", cfg.ADVO_PRODUCT))
    licence = by_topic(findings)["licence"]
    assert licence.severity == "error" and "NOBODY" in licence.text and exit_code(findings) == 1
