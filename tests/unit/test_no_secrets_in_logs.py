"""Logs and exception texts carry ids and status codes only: no API key, password, token or PII."""

from __future__ import annotations

import base64
import logging
import traceback
from collections.abc import Awaitable, Callable
from types import SimpleNamespace

import fakeredis
import httpx
import pytest
import respx
from pydantic import SecretStr

from services.advoware.client import AdvowareClient
from services.advoware.concurrency import LocalSemaphore
from services.espocrm.client import EspoCrmClient, hmac_authorization
from tests.support.retry import RETRY_SETTINGS, default_retry
from tests.unit.test_espocrm_client import espo_settings

ESPO = "http://crm.test/api/v1"
ESPO_KEY = "espo-KEY-6f1c0d9e8b7a65432100aa"
ESPO_SECRET = "espo-SECRET-9a8b7c6d5e4f3210ffee"
ADVO_KEY_RAW = b"advo-APIKEY-raw-bytes-0123456789"
ADVO_KEY = base64.b64encode(ADVO_KEY_RAW).decode()
ADVO_PASSWORD = "advo-PASSWORD-Kennwort-4711"
ADVO_TOKEN = "advo-ACCESS-TOKEN-abcdef0123456789"
PERSON = "Anna Müller-Lüdenscheidt"
EMAIL = "anna.mueller@example.de"

SECRETS = [
    ESPO_KEY,
    ESPO_SECRET,
    ADVO_KEY,
    ADVO_KEY_RAW.decode(),
    ADVO_PASSWORD,
    ADVO_TOKEN,
    hmac_authorization(ESPO_KEY, ESPO_SECRET, "GET", "CBeteiligte/abc"),
]
PII = [PERSON, EMAIL]

pytestmark = pytest.mark.respx(assert_all_called=False)


async def _nosleep(_: float) -> None:
    return None


def exception_texts(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


async def run_all(scenarios: list[Callable[[], Awaitable[object]]]) -> str:
    texts = []
    for scenario in scenarios:
        try:
            await scenario()
        except Exception as exc:
            texts.append(exception_texts(exc))
    return "\n".join(texts)


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
    for pii in PII:
        assert pii not in text


@pytest.mark.parametrize("hmac_mode", [False, True])
async def test_espocrm_logs_and_errors_are_clean(
    caplog: pytest.LogCaptureFixture, respx_mock: respx.MockRouter, hmac_mode: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    rec = f"{ESPO}/CBeteiligte/abc"
    respx_mock.get(rec).mock(
        side_effect=[
            httpx.Response(200, json={"id": "abc", "name": PERSON, "emailAddress": EMAIL}),
            httpx.Response(401, headers={"X-Status-Reason": "second-step-required"}),
            httpx.Response(403, headers={"X-Status-Reason": "No read access."}),
            httpx.Response(404, headers={"X-Status-Reason": "Record abc not found."}),
            *[httpx.Response(503, text=f"Fehler bei {PERSON}") for _ in range(4)],
            httpx.ConnectError("connection refused"),
            httpx.ReadTimeout("timed out"),
            httpx.ReadTimeout("timed out"),
            httpx.ReadTimeout("timed out"),
        ]
    )
    respx_mock.put(rec).respond(400, headers={"X-Status-Reason": "Field validation failure; field: status"})
    respx_mock.post(f"{ESPO}/CBeteiligte").respond(
        409, headers={"X-Status-Reason": "duplicate"}, json=[{"id": "dup", "name": PERSON}]
    )
    respx_mock.post(f"{ESPO}/Notification").respond(403)
    respx_mock.post(f"{ESPO}/Note").respond(200, json={"id": "n"})
    settings = espo_settings(base_url=ESPO, api_key=ESPO_KEY, api_secret=ESPO_SECRET if hmac_mode else None)
    async with EspoCrmClient(settings, retry=default_retry(sleep=_nosleep)) as c:
        errors = await run_all(
            [
                lambda: c.get("CBeteiligte", "abc"),
                lambda: c.get("CBeteiligte", "abc"),
                lambda: c.get("CBeteiligte", "abc"),
                lambda: c.get("CBeteiligte", "abc"),
                lambda: c.get("CBeteiligte", "abc"),
                lambda: c.get("CBeteiligte", "abc"),
                lambda: c.update("CBeteiligte", "abc", {"name": PERSON, "emailAddress": EMAIL}),
                lambda: c.create("CBeteiligte", {"name": PERSON, "emailAddress": EMAIL}),
                lambda: c.create(
                    "Note",
                    {
                        "type": "Post",
                        "parentType": "CBeteiligte",
                        "parentId": "abc",
                        "post": f"@jdoe Bitte {PERSON} prüfen",
                    },
                ),
            ]
        )
        assert_clean(repr(c))
    assert errors.count("Error") >= 6
    assert caplog.records, "expected some log records"
    assert_clean(caplog.text)
    assert_clean(errors)


async def test_advoware_logs_and_errors_are_clean(
    caplog: pytest.LogCaptureFixture, respx_mock: respx.MockRouter
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = SimpleNamespace(
        ADVOWARE_API_BASE_URL="https://advo.test/",
        ADVOWARE_SECURITY_URL="https://security.test/",
        ADVOWARE_PRODUCT_ID=64,
        ADVOWARE_APP_ID="app-123",
        ADVOWARE_API_KEY=SecretStr(ADVO_KEY),
        ADVOWARE_KANZLEI="K1",
        ADVOWARE_DATABASE="DB",
        ADVOWARE_USER="bao",
        ADVOWARE_ROLE=2,
        ADVOWARE_PASSWORD=SecretStr(ADVO_PASSWORD),
        ADVOWARE_MAX_CONCURRENCY=2,
        HTTP_TIMEOUT_SECONDS=5.0,
        **RETRY_SETTINGS,
    )
    url = "https://advo.test/api/v1/advonet/Beteiligte"
    token_route = respx_mock.post("https://security.test/api/v1/Token").mock(
        side_effect=[
            httpx.Response(200, json={"access_token": ADVO_TOKEN, "expires_in": 3600}),
            httpx.Response(200, json={"access_token": ADVO_TOKEN, "expires_in": 3600}),
            # the refused token request echoes the credentials in its body: must not surface
            httpx.Response(500, text=f"Falscher Name oder falsches Kennwort: bao/{ADVO_PASSWORD}"),
        ]
    )
    respx_mock.get(f"{url}/1").mock(
        side_effect=[
            httpx.Response(401, text=f"token {ADVO_TOKEN} expired"),
            httpx.Response(200, json={"betNr": 1, "name": PERSON}),
        ]
    )
    respx_mock.get(f"{url}/2").respond(503, text=f"Kanzlei ist nicht registriert ({ADVO_PASSWORD})")
    respx_mock.get(f"{url}/3").mock(side_effect=httpx.ConnectError(f"failed {ADVO_TOKEN}"))
    respx_mock.put(f"{url}/4").respond(404)
    respx_mock.post(url).respond(409, text=PERSON)
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    async with AdvowareClient(
        settings, redis, retry=default_retry(sleep=_nosleep, max_attempts=2), limiter=LocalSemaphore(2)
    ) as c:
        errors = await run_all(
            [
                lambda: c.get_beteiligter(1),
                lambda: c.get_beteiligter(2),
                lambda: c.get_beteiligter(3),
                lambda: c.update_beteiligter(4, {"name": PERSON, "kommunikation": [{"tlf": EMAIL}]}),
                lambda: c.create_beteiligter({"name": PERSON}),
            ]
        )
        await redis.flushall()
        await c.tokens.invalidate(ADVO_TOKEN)  # also drops the instance's remembered token
        respx_mock.get(f"{url}/5").respond(200, json={})
        errors += await run_all([lambda: c.get_beteiligter(5)])  # token refused -> AuthError
        assert_clean(repr(c) + repr(c.tokens))
    await redis.aclose()
    assert token_route.call_count == 3
    assert "AuthError" in errors and "NotFoundError" in errors
    assert caplog.records
    assert_clean(caplog.text)
    assert_clean(errors)


async def test_advoware_message_of_a_4xx_stays_out_of_logs_and_exception_texts(
    caplog: pytest.LogCaptureFixture, respx_mock: respx.MockRouter
) -> None:
    """Advoware's `Message` may quote what was sent (a name): logs and exception texts carry ids
    and status only; the text is kept as the error's detail, for the record's failure reason
    (syncErrorMessage, shown to the firm's staff on purpose) and nowhere else."""
    from services.errors import ValidationError
    from services.sync.outcomes import failure_reason, log_reason

    caplog.set_level(logging.DEBUG)
    settings = SimpleNamespace(
        ADVOWARE_API_BASE_URL="https://advo.test/",
        ADVOWARE_SECURITY_URL="https://security.test/",
        ADVOWARE_PRODUCT_ID=64,
        ADVOWARE_APP_ID="app-123",
        ADVOWARE_API_KEY=SecretStr(ADVO_KEY),
        ADVOWARE_KANZLEI="K1",
        ADVOWARE_DATABASE="DB",
        ADVOWARE_USER="bao",
        ADVOWARE_ROLE=2,
        ADVOWARE_PASSWORD=SecretStr(ADVO_PASSWORD),
        ADVOWARE_MAX_CONCURRENCY=2,
        HTTP_TIMEOUT_SECONDS=5.0,
        **RETRY_SETTINGS,
    )
    url = "https://advo.test/api/v1/advonet/Beteiligte"
    respx_mock.post("https://security.test/api/v1/Token").respond(
        200, json={"access_token": ADVO_TOKEN, "expires_in": 3600}
    )
    message = f"Beteiligter '{PERSON}' ({EMAIL}) ist bereits vorhanden"
    respx_mock.put(f"{url}/7").respond(400, json={"Message": message})
    respx_mock.post(url).respond(409, json={"message": message})
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    caught: list[ValidationError | Exception] = []
    async with AdvowareClient(
        settings, redis, retry=default_retry(sleep=_nosleep, max_attempts=2), limiter=LocalSemaphore(2)
    ) as c:
        for call in (
            lambda: c.update_beteiligter(7, {"name": PERSON}),
            lambda: c.create_beteiligter({"name": PERSON}),
        ):
            with pytest.raises(Exception) as info:
                await call()
            caught.append(info.value)
    await redis.aclose()
    assert isinstance(caught[0], ValidationError) and caught[0].status_code == 400
    for exc in caught:
        assert_clean(exception_texts(exc) + log_reason(exc))
        assert message in failure_reason(exc)  # the record's syncErrorMessage keeps it
    assert_clean(caplog.text)
