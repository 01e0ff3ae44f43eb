"""Token cache and single-flight against a real redis-server, including separate OS processes."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import respx
from redis.asyncio import Redis

from services.advoware.token import TokenProvider, compare_and_delete
from services.store import keys
from services.store.connection import connect
from tests.support.processes import PROJECT_ROOT, RedisServer

API_KEY = base64.b64encode(b"test-secret-key").decode()


def make(
    redis: Redis,
    http: httpx.AsyncClient,
    kanzlei: str,
    security_url: str = "https://security.test/",
    **kw: Any,
) -> TokenProvider:
    return TokenProvider(
        http=http,
        redis=redis,
        security_url=security_url,
        app_id="app-123",
        api_key=API_KEY,
        kanzlei=kanzlei,
        database="ADVOWARE",
        user="bao",
        password="pw-secret-1",
        role=2,
        product=64,
        **kw,
    )


@respx.mock
async def test_cache_and_renewal_with_real_redis(redis_server: RedisServer) -> None:
    kanzlei = uuid.uuid4().hex
    route = respx.post("https://security.test/api/v1/Token").mock(
        side_effect=[
            httpx.Response(200, json={"access_token": "tok-1", "expires_in": 3600}),
            httpx.Response(200, json={"access_token": "tok-2", "expires_in": 3600}),
        ]
    )
    r1, r2 = connect(redis_server.url), connect(redis_server.url)
    try:
        async with httpx.AsyncClient() as http:
            a, b = make(r1, http, kanzlei), make(r2, http, kanzlei)
            assert await a.get() == "tok-1"
            assert await b.get() == "tok-1"  # other connection, same cache
            assert 3_400_000 < await r1.pttl(a.cache_key) <= 3_540_000
            assert await b.invalidate("tok-1") is True  # 401 seen by b
            assert await a.invalidate("tok-1") is False  # a's late 401 must not drop tok-2 later
            assert await a.get() == "tok-2"
            assert await b.get() == "tok-2"
        assert route.call_count == 2
    finally:
        await r1.aclose()
        await r2.aclose()


@respx.mock
async def test_single_flight_across_connections(redis_server: RedisServer) -> None:
    kanzlei = uuid.uuid4().hex

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.2)
        return httpx.Response(200, json={"access_token": "tok-shared", "expires_in": 3600})

    route = respx.post("https://security.test/api/v1/Token").mock(side_effect=slow)
    conns = [connect(redis_server.url) for _ in range(8)]
    try:
        async with httpx.AsyncClient() as http:
            tokens = await asyncio.gather(*(make(c, http, kanzlei).get() for c in conns))
        assert tokens == ["tok-shared"] * 8
        assert route.call_count == 1
        assert await conns[0].exists(make(conns[0], http, kanzlei).lock_key) == 0
    finally:
        for c in conns:
            await c.aclose()


async def test_lua_compare_and_delete(redis: Redis) -> None:
    name = keys.scratch("cad", uuid.uuid4().hex)
    await redis.set(name, "owner-a", px=5000)
    assert await compare_and_delete(redis, name, "owner-b") is False
    assert await redis.get(name) == "owner-a"
    assert await compare_and_delete(redis, name, "owner-a") is True
    assert await redis.exists(name) == 0


@respx.mock
async def test_crashed_lock_holder_blocks_only_until_lock_expiry(redis: Redis) -> None:
    kanzlei = uuid.uuid4().hex
    route = respx.post("https://security.test/api/v1/Token").respond(
        200, json={"access_token": "tok", "expires_in": 3600}
    )
    async with httpx.AsyncClient() as http:
        p = make(redis, http, kanzlei, lock_ttl=2.0)
        await redis.set(p.lock_key, "crashed-process", px=400)
        start = time.monotonic()
        assert await p.get() == "tok"
        assert 0.3 < time.monotonic() - start < 2.0
    assert route.call_count == 1


# ---------------------------------------------------------------- separate OS processes


class _TokenServer:
    def __init__(self) -> None:
        self.requests = 0
        self.max_parallel = 0
        self._active = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert body["HMAC512Signature"]
                with outer._lock:
                    outer.requests += 1
                    outer._active += 1
                    outer.max_parallel = max(outer.max_parallel, outer._active)
                time.sleep(0.3)
                with outer._lock:
                    outer._active -= 1
                payload = json.dumps({"access_token": "tok-proc", "expires_in": 3600}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"


@pytest.fixture
def token_server() -> Iterator[_TokenServer]:
    server = _TokenServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


CHILD = textwrap.dedent(
    """
    import asyncio, base64, sys, httpx
    from services.advoware.token import TokenProvider
    from services.store.connection import connect

    async def main():
        redis = connect(sys.argv[1])
        async with httpx.AsyncClient() as http:
            p = TokenProvider(http=http, redis=redis, security_url=sys.argv[2], app_id="app-123",
                              api_key=base64.b64encode(b"test-secret-key").decode(), kanzlei=sys.argv[3],
                              database="ADVOWARE", user="bao", password="pw-secret-1",
                              role=2, product=64)
            print(await p.get())
        await redis.aclose()

    asyncio.run(main())
    """
)


def test_single_flight_across_processes(redis_server: RedisServer, token_server: _TokenServer) -> None:
    kanzlei = uuid.uuid4().hex
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, redis_server.url, token_server.url, kanzlei],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(5)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()
        outputs.append(out.decode().strip())
    assert outputs == ["tok-proc"] * 5
    assert token_server.requests == 1
    assert token_server.max_parallel == 1
