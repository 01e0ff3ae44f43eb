from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import fakeredis
import httpx
import pytest
import respx
from pydantic import SecretStr

from services.advoware.client import AdvowareClient
from services.advoware.concurrency import LocalSemaphore, RedisSemaphore
from services.errors import (
    ApiError,
    AuthError,
    ConflictError,
    ConnectorOfflineError,
    NotFoundError,
    RateLimitedError,
    UnavailableError,
    ValidationError,
)
from services.store import keys
from tests.support.fakes import RecordedSleeps
from tests.support.retry import RETRY_SETTINGS, default_retry

API = "https://connector.test:88/"
URL = API + "api/v1/advonet/Beteiligte"
TOKEN_URL = "https://security.test/api/v1/Token"

pytestmark = pytest.mark.respx(assert_all_called=False)


def settings(**over: Any) -> SimpleNamespace:
    base: dict[str, Any] = {
        "ADVOWARE_API_BASE_URL": API,
        "ADVOWARE_SECURITY_URL": "https://security.test/",
        "ADVOWARE_PRODUCT_ID": 64,
        "ADVOWARE_APP_ID": "app-123",
        "ADVOWARE_API_KEY": SecretStr(base64.b64encode(b"test-secret-key").decode()),
        "ADVOWARE_KANZLEI": "KANZLEI-01",
        "ADVOWARE_DATABASE": "ADVOWARE",
        "ADVOWARE_USER": "bao",
        "ADVOWARE_ROLE": 2,
        "ADVOWARE_PASSWORD": SecretStr("pw-secret-1"),
        "ADVOWARE_MAX_CONCURRENCY": 4,
        "HTTP_TIMEOUT_SECONDS": 5.0,
        **RETRY_SETTINGS,
    }
    base.update(over)
    return SimpleNamespace(**base)


async def _nosleep(_: float) -> None:
    return None


@pytest.fixture
async def client(redis: fakeredis.FakeAsyncRedis) -> AsyncIterator[AdvowareClient]:
    c = AdvowareClient(settings(), redis, retry=default_retry(sleep=_nosleep), limiter=LocalSemaphore(4))
    yield c
    await c.aclose()


@pytest.fixture(autouse=True)
def _token(respx_mock: respx.MockRouter) -> respx.Route:
    counter = {"n": 0}

    def issue(request: httpx.Request) -> httpx.Response:
        counter["n"] += 1
        return httpx.Response(200, json={"access_token": f"tok-{counter['n']}", "expires_in": 3600})

    return respx_mock.post(TOKEN_URL).mock(side_effect=issue)


# ---------------------------------------------------------------- endpoints


async def test_get_beteiligter(client: AdvowareClient, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(f"{URL}/4711").respond(200, json={"betNr": 4711, "name": "Muster"})
    assert await client.get_beteiligter(4711) == {"betNr": 4711, "name": "Muster"}
    assert route.calls.last.request.headers["Authorization"] == "Bearer tok-1"


async def test_base_url_without_trailing_slash_is_normalised(
    redis: fakeredis.FakeAsyncRedis, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(f"{URL}/1").respond(200, json={"betNr": 1})
    async with AdvowareClient(
        settings(ADVOWARE_API_BASE_URL=API.rstrip("/"), ADVOWARE_SECURITY_URL="https://security.test"),
        redis,
        limiter=LocalSemaphore(1),
    ) as c:
        await c.get_beteiligter(1)
    assert route.call_count == 1


async def test_iter_beteiligte_pages_and_changed_since(
    client: AdvowareClient, respx_mock: respx.MockRouter
) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        skip = int(request.url.params["skip"])
        take = int(request.url.params["take"])
        assert request.url.params["geaendertAb"] == "2026-07-01T11:55:00"
        total = 250
        items = [{"betNr": i} for i in range(skip, min(skip + take, total))]
        return httpx.Response(200, json=items)

    route = respx_mock.get(URL).mock(side_effect=page)
    rows = [r async for r in client.iter_beteiligte(changed_since_local="2026-07-01T11:55:00")]
    assert [r["betNr"] for r in rows] == list(range(250))
    assert [(c.request.url.params["skip"], c.request.url.params["take"]) for c in route.calls] == [
        ("0", "100"),
        ("100", "100"),
        ("200", "100"),
        ("250", "100"),  # a short page may be a server's cap: only the empty page ends a listing
    ]


async def test_iter_beteiligte_stops_on_empty_page_and_dedupes(
    client: AdvowareClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(URL).mock(
        side_effect=[
            httpx.Response(200, json=[{"betNr": 1}, {"betNr": 2}]),
            httpx.Response(200, json=[{"betNr": 2}, {"betNr": 3}]),  # shifted page: 2 again
            httpx.Response(200, json=[]),
        ]
    )
    rows = [r async for r in client.iter_beteiligte(take=2)]
    assert [r["betNr"] for r in rows] == [1, 2, 3]
    assert "geaendertAb" not in route.calls[0].request.url.params
    assert route.call_count == 3


async def test_create_beteiligter(client: AdvowareClient, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(URL).respond(201, json={"betNr": 900, "name": "Neu"})
    assert (await client.create_beteiligter({"name": "Neu"}))["betNr"] == 900
    assert json.loads(route.calls.last.request.content) == {"name": "Neu"}


async def test_create_is_not_retried_on_5xx_or_timeout(
    client: AdvowareClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(URL).respond(503)
    with pytest.raises(UnavailableError):
        await client.create_beteiligter({"name": "Neu"})
    assert route.call_count == 1
    route.mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(UnavailableError):
        await client.create_beteiligter({"name": "Neu"})
    assert route.call_count == 2


async def test_create_retried_after_connect_error(
    client: AdvowareClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(URL).mock(
        side_effect=[httpx.ConnectError("x"), httpx.Response(201, json={"betNr": 5})]
    )
    assert (await client.create_beteiligter({"name": "Neu"}))["betNr"] == 5
    assert route.call_count == 2


async def test_update_beteiligter(client: AdvowareClient, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.put(f"{URL}/4711").respond(200, json={"betNr": 4711, "name": "Neu"})
    assert (await client.update_beteiligter(4711, {"betNr": 4711, "name": "Neu"}))["name"] == "Neu"
    assert json.loads(route.calls.last.request.content)["name"] == "Neu"


def test_no_delete_method() -> None:
    assert not any("delete" in name for name in dir(AdvowareClient))


# ---------------------------------------------------------------- 401 renewal


async def test_401_renews_token_once_and_retries(
    client: AdvowareClient, respx_mock: respx.MockRouter, _token: respx.Route
) -> None:
    route = respx_mock.get(f"{URL}/1").mock(
        side_effect=[httpx.Response(401), httpx.Response(200, json={"betNr": 1})]
    )
    assert await client.get_beteiligter(1) == {"betNr": 1}
    assert [c.request.headers["Authorization"] for c in route.calls] == ["Bearer tok-1", "Bearer tok-2"]
    assert _token.call_count == 2


async def test_second_401_is_auth_error(
    client: AdvowareClient, respx_mock: respx.MockRouter, _token: respx.Route
) -> None:
    route = respx_mock.get(f"{URL}/1").respond(401)
    with pytest.raises(AuthError) as info:
        await client.get_beteiligter(1)
    assert info.value.status_code == 401
    assert route.call_count == 2 and _token.call_count == 2


# ---------------------------------------------------------------- error mapping


async def test_400_validation_message(client: AdvowareClient, respx_mock: respx.MockRouter) -> None:
    respx_mock.put(f"{URL}/1").respond(400, json={"Message": "Das Feld name ist erforderlich."})
    with pytest.raises(ValidationError) as info:
        await client.update_beteiligter(1, {})
    # the Message is the error's detail (for the record), never in its text (logs)
    assert info.value.detail == "Das Feld name ist erforderlich." and info.value.record_id == "1"
    assert "erforderlich" not in str(info.value)


@pytest.mark.parametrize(
    ("status", "body", "cls", "calls"),
    [
        (403, "", AuthError, 1),
        (404, "", NotFoundError, 2),  # confirmed by a second read (and the listing)
        (409, "", ConflictError, 1),
        (500, "boom", UnavailableError, 4),
        (503, "Kanzlei ist nicht angemeldet", ConnectorOfflineError, 6),
        (503, "Kanzlei ist nicht registriert", AuthError, 1),
        (500, "Benutzer ist nicht freigeschaltet", AuthError, 1),
        (500, "Falscher Name oder falsches Kennwort", AuthError, 1),
        (500, "Benutzer / Kennwort ungültig", AuthError, 1),
    ],
)
async def test_error_mapping(
    client: AdvowareClient,
    respx_mock: respx.MockRouter,
    status: int,
    body: str,
    cls: type[ApiError],
    calls: int,
) -> None:
    route = respx_mock.get(f"{URL}/7").respond(status, text=body)
    respx_mock.get(URL).respond(200, json=[{"betNr": 1}])
    with pytest.raises(cls) as info:
        await client.get_beteiligter(7)
    assert type(info.value) is cls
    assert info.value.status_code == status and info.value.record_id == "7"
    assert route.call_count == calls


async def test_offline_text_becomes_reason(client: AdvowareClient, respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{URL}/7").respond(503, text="Die Datenbank ADVOWARE ist nicht angemeldet")
    with pytest.raises(UnavailableError) as info:
        await client.get_beteiligter(7)
    assert info.value.reason == "connector offline (nicht angemeldet)"


async def test_429_retry_after(redis: fakeredis.FakeAsyncRedis, respx_mock: respx.MockRouter) -> None:
    sleeps = RecordedSleeps()
    route = respx_mock.get(f"{URL}/7").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3"}),
            httpx.Response(200, json={"betNr": 7}),
        ]
    )
    async with AdvowareClient(
        settings(), redis, retry=default_retry(sleep=sleeps), limiter=LocalSemaphore(1)
    ) as c:
        assert (await c.get_beteiligter(7))["betNr"] == 7
    assert sleeps == [3.0] and route.call_count == 2


async def test_429_gives_up(client: AdvowareClient, respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{URL}/7").respond(429, headers={"Retry-After": "1"})
    with pytest.raises(RateLimitedError) as info:
        await client.get_beteiligter(7)
    assert info.value.retry_after == 1.0


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("x"),
        httpx.ConnectTimeout("x"),
        httpx.ReadTimeout("x"),
        httpx.RemoteProtocolError("x"),
    ],
)
async def test_transport_errors(client: AdvowareClient, respx_mock: respx.MockRouter, exc: Exception) -> None:
    route = respx_mock.get(f"{URL}/7").mock(side_effect=exc)
    with pytest.raises(UnavailableError):
        await client.get_beteiligter(7)
    # A connection never made is repeated more often: it was provably not carried out.
    unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
    assert route.call_count == (default_retry().unsent_attempts if unsent else default_retry().max_attempts)


async def test_default_limiter_is_redis_semaphore(redis: fakeredis.FakeAsyncRedis) -> None:
    c = AdvowareClient(settings(ADVOWARE_MAX_CONCURRENCY=3), redis)
    assert isinstance(c.limiter, RedisSemaphore)
    assert c.limiter.limit == 3 and c.limiter.name == keys.advoware_concurrency("KANZLEI-01")
    assert "pw-secret-1" not in repr(c)
    await c.aclose()


async def test_create_retried_when_token_service_was_down(
    client: AdvowareClient, respx_mock: respx.MockRouter, _token: respx.Route
) -> None:
    _token.mock(
        side_effect=[
            httpx.Response(503, text="nicht angemeldet"),
            httpx.Response(200, json={"access_token": "tok-x", "expires_in": 3600}),
        ]
    )
    route = respx_mock.post(URL).respond(201, json={"betNr": 6})
    assert (await client.create_beteiligter({"name": "Neu"}))["betNr"] == 6
    assert route.call_count == 1 and _token.call_count == 2


async def test_redis_semaphore_path_releases_slots(
    redis: fakeredis.FakeAsyncRedis, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(f"{URL}/8").respond(200, json={"betNr": 8})
    async with AdvowareClient(settings(), redis) as c:
        assert isinstance(c.limiter, RedisSemaphore)
        assert (await c.get_beteiligter(8))["betNr"] == 8
        assert await redis.zcard(c.limiter.name) == 0
