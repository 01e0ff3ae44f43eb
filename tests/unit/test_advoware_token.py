from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
from datetime import UTC, datetime
from typing import Any

import fakeredis
import httpx
import pytest
import respx
from redis.asyncio import Redis

from services.advoware.token import (
    TokenProvider,
    advoware_signature,
    compare_and_delete,
    request_timestamp,
)
from services.errors import AuthError, RateLimitedError, UnavailableError
from services.store import keys

SEC = "https://security.test/"
TOKEN_URL = SEC + "api/v1/Token"
API_KEY = base64.b64encode(b"test-secret-key").decode()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def token_route_issuing_two(*, expires_in: int) -> respx.Route:
    """The token endpoint answering "tok-1", then "tok-2", each valid for `expires_in` s."""
    return respx.post(TOKEN_URL).mock(
        side_effect=[
            httpx.Response(200, json={"access_token": token, "expires_in": expires_in})
            for token in ("tok-1", "tok-2")
        ]
    )


def provider(redis: Redis, http: httpx.AsyncClient, clock: Clock | None = None, **kw: Any) -> TokenProvider:
    return TokenProvider(
        http=http,
        redis=redis,
        security_url=SEC,
        app_id="app-123",
        api_key=API_KEY,
        kanzlei="KANZLEI-01",
        database="ADVOWARE",
        user="bao",
        password="pw-secret-1",
        role=2,
        product=64,
        clock=clock or Clock(),
        **kw,
    )


# ---------------------------------------------------------------- signature


def test_signature_golden_vector_from_gitlaw() -> None:
    # mikelninh/gitlaw pilot/law-firm/autopilot/advoware-client.test.mjs
    # ("Advoware HMAC matches the documented SHA-512 construction")
    assert advoware_signature(API_KEY, 64, "app-123", "nonce-abc", "2026-08-30T00:00:00.000Z") == (
        "o7rz9KmoXZs550HfzO6ffiG17XwiPmlBHlksUYKZ3jcfolELow51Fw5KlrQqCK5y41aIValDjrh1iQ2GZ2WtqQ=="
    )


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_signature_matches_openssl() -> None:
    key = base64.b64decode(API_KEY)
    msg = b"64:app-456:76f895f8-3d7b-447b-825b-7b1ff67dc637:2021-01-29T14:04:26.7955547Z"
    out = subprocess.run(
        ["openssl", "dgst", "-sha512", "-mac", "HMAC", "-macopt", f"hexkey:{key.hex()}", "-binary"],
        input=msg,
        capture_output=True,
        check=True,
    ).stdout
    assert (
        advoware_signature(
            API_KEY, 64, "app-456", "76f895f8-3d7b-447b-825b-7b1ff67dc637", "2021-01-29T14:04:26.7955547Z"
        )
        == base64.b64encode(out).decode()
    )


def test_request_timestamp_format() -> None:
    assert request_timestamp(datetime(2026, 8, 30, 0, 0, 0, 123456, tzinfo=UTC)) == "2026-08-30T00:00:00.123Z"


async def test_request_body_fields(redis: fakeredis.FakeAsyncRedis) -> None:
    async with httpx.AsyncClient() as http:
        body = provider(redis, http).build_request(nonce="nonce-abc", timestamp="2026-08-30T00:00:00.000Z")
    assert body == {
        "AppID": "app-123",
        "Kanzlei": "KANZLEI-01",
        "Database": "ADVOWARE",
        "User": "bao",
        "Password": "pw-secret-1",
        "Role": 2,
        "Product": 64,
        "Nonce": "nonce-abc",
        "RequestTimeStamp": "2026-08-30T00:00:00.000Z",
        "HMAC512Signature": "o7rz9KmoXZs550HfzO6ffiG17XwiPmlBHlksUYKZ3jcfolELow51Fw5KlrQqCK5y41aIValDjrh1iQ2GZ2WtqQ==",
    }


# ---------------------------------------------------------------- caching


@respx.mock
async def test_token_is_fetched_once_and_cached(redis: fakeredis.FakeAsyncRedis) -> None:
    route = respx.post(TOKEN_URL).respond(200, json={"access_token": "tok-1", "expires_in": 3600})
    clock = Clock()
    async with httpx.AsyncClient() as http:
        p = provider(redis, http, clock)
        assert await p.get() == "tok-1"
        assert await p.get() == "tok-1"
        # a second process (new provider, same Redis) uses the cache too
        assert await provider(redis, http, clock).get() == "tok-1"
    assert route.call_count == 1
    sent = json.loads(route.calls.last.request.content)
    assert sent["Nonce"] and sent["RequestTimeStamp"].endswith("Z")
    assert sent["HMAC512Signature"] == advoware_signature(
        API_KEY, 64, "app-123", sent["Nonce"], sent["RequestTimeStamp"]
    )
    stored = json.loads(await redis.get(keys.advoware_token("KANZLEI-01", "bao")))
    assert stored == {"access_token": "tok-1", "expires_at": clock.now + 3600}
    ttl = await redis.pttl(keys.advoware_token("KANZLEI-01", "bao"))
    assert 3500_000 < ttl <= 3540_000  # lifetime minus the 60 s margin


@respx.mock
async def test_token_renewed_shortly_before_expiry(redis: fakeredis.FakeAsyncRedis) -> None:
    route = token_route_issuing_two(expires_in=600)
    clock = Clock()
    async with httpx.AsyncClient() as http:
        p = provider(redis, http, clock)
        assert await p.get() == "tok-1"
        clock.now += 539
        assert await p.get() == "tok-1"
        clock.now += 2  # inside the 60 s margin
        assert await p.get() == "tok-2"
    assert route.call_count == 2


@respx.mock
async def test_expiration_utc_is_used_without_expires_in(redis: fakeredis.FakeAsyncRedis) -> None:
    clock = Clock()
    exp = datetime.fromtimestamp(clock.now + 1200, UTC).strftime("%Y-%m-%dT%H:%M:%S.1234567Z")
    respx.post(TOKEN_URL).respond(200, json={"access_token": "tok", "expiration_utc": exp})
    async with httpx.AsyncClient() as http:
        await provider(redis, http, clock).get()
    stored = json.loads(await redis.get(keys.advoware_token("KANZLEI-01", "bao")))
    assert stored["expires_at"] == pytest.approx(clock.now + 1200, abs=1)


@respx.mock
async def test_invalidate_only_the_failed_token(redis: fakeredis.FakeAsyncRedis) -> None:
    route = token_route_issuing_two(expires_in=3600)
    async with httpx.AsyncClient() as http:
        p = provider(redis, http)
        assert await p.get() == "tok-1"
        assert await p.invalidate("some-older-token") is False
        assert await p.get() == "tok-1"
        assert await p.invalidate("tok-1") is True
        assert await p.get() == "tok-2"
        assert await p.invalidate("tok-1") is False  # stale 401 from another caller: keep tok-2
        assert await p.get() == "tok-2"
    assert route.call_count == 2


async def test_compare_and_delete(redis: fakeredis.FakeAsyncRedis) -> None:
    await redis.set("k", "mine")
    assert await compare_and_delete(redis, "k", "theirs") is False
    assert await redis.get("k") == "mine"
    assert await compare_and_delete(redis, "k", "mine") is True
    assert await redis.get("k") is None


# ---------------------------------------------------------------- single flight


@respx.mock
async def test_concurrent_callers_share_one_token_request(redis: fakeredis.FakeAsyncRedis) -> None:
    async def slow_token(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.1)
        return httpx.Response(200, json={"access_token": "tok-shared", "expires_in": 3600})

    route = respx.post(TOKEN_URL).mock(side_effect=slow_token)
    clock = Clock()
    async with httpx.AsyncClient() as http:
        providers = [provider(redis, http, clock) for _ in range(10)]  # ten "processes"
        tokens = await asyncio.gather(*(p.get() for p in providers))
    assert tokens == ["tok-shared"] * 10
    assert route.call_count == 1
    assert await redis.get(keys.advoware_token_lock("KANZLEI-01", "bao")) is None  # released


@respx.mock
async def test_lock_released_when_token_request_fails(redis: fakeredis.FakeAsyncRedis) -> None:
    respx.post(TOKEN_URL).mock(
        side_effect=[
            httpx.Response(503, text="Kanzlei KANZLEI-01 ist nicht angemeldet"),
            httpx.Response(200, json={"access_token": "tok", "expires_in": 3600}),
        ]
    )
    async with httpx.AsyncClient() as http:
        p = provider(redis, http)
        with pytest.raises(UnavailableError) as info:
            await p.get()
        assert "nicht angemeldet" in (info.value.reason or "")
        assert await redis.get(p.lock_key) is None
        assert await p.get() == "tok"


# ---------------------------------------------------------------- token errors


@respx.mock
@pytest.mark.parametrize(
    ("status", "text", "cls"),
    [
        (400, "Falscher Name oder falsches Kennwort", AuthError),
        (500, "Benutzer / Kennwort ungültig für bao", AuthError),
        (503, "Kanzlei KANZLEI-01 ist nicht registriert", AuthError),
        (500, "Produkt ist nicht freigeschaltet", AuthError),
        (401, "", AuthError),
        (403, "", AuthError),
        (503, "Datenbank ist nicht angemeldet", UnavailableError),
        (502, "bad gateway", UnavailableError),
        (429, "", RateLimitedError),
    ],
)
async def test_token_error_mapping(
    redis: fakeredis.FakeAsyncRedis, status: int, text: str, cls: type[Exception]
) -> None:
    respx.post(TOKEN_URL).respond(status, text=text, headers={"Retry-After": "5"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(cls) as info:
            await provider(redis, http).get()
    assert "bao" not in str(info.value)  # the body text (may name the user) is not echoed


@respx.mock
async def test_token_transport_error(redis: fakeredis.FakeAsyncRedis) -> None:
    respx.post(TOKEN_URL).mock(side_effect=httpx.ConnectError("refused"))
    async with httpx.AsyncClient() as http:
        with pytest.raises(UnavailableError):
            await provider(redis, http).get()


@respx.mock
async def test_token_response_without_access_token(redis: fakeredis.FakeAsyncRedis) -> None:
    respx.post(TOKEN_URL).respond(200, json={"token_type": "bearer"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(UnavailableError):
            await provider(redis, http).get()


# ---------------------------------------------------------------- single-flight on the one lease


@respx.mock
async def test_token_request_runs_under_the_lease_and_waiters_use_its_result(
    redis: fakeredis.FakeAsyncRedis,
) -> None:
    from services.store.lease import Lease, holder

    async with httpx.AsyncClient() as http:
        p = provider(redis, http)
        seen_holder: list[str | None] = []

        async def issue(request: httpx.Request) -> httpx.Response:
            seen_holder.append(await holder(redis, p.lock_key))
            await asyncio.sleep(0.05)
            return httpx.Response(200, json={"access_token": "tok-1", "expires_in": 3600})

        route = respx.post(TOKEN_URL).mock(side_effect=issue)
        assert await asyncio.gather(*(provider(redis, http).get() for _ in range(5))) == ["tok-1"] * 5
        assert route.call_count == 1 and seen_holder[0] is not None  # held while requesting
        assert await holder(redis, p.lock_key) is None  # released after

        # Someone else holds the lease: no request of ours until the token appears in the cache.
        await redis.delete(p.cache_key)
        other = Lease(redis, p.lock_key, 5)
        assert await other.acquire()
        waiter = asyncio.create_task(provider(redis, http).get())
        await asyncio.sleep(0.1)
        assert not waiter.done() and route.call_count == 1
        await redis.set(p.cache_key, json.dumps({"access_token": "tok-x", "expires_at": Clock().now + 3600}))
        assert await waiter == "tok-x"
        await other.release()
