from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox import config as cfg
from sandbox.advoware import AdvoSimulator
from sandbox.espocrm import EspoSimulator

API = {"X-Api-Key": cfg.ESPO_API_KEY}
HUMAN = {"X-Api-Key": cfg.ESPO_HUMAN_KEY}


def asgi_client(app: Any, base_url: str) -> httpx.AsyncClient:
    """An HTTP client that talks to a simulator's ASGI app in-process, without a socket."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


@dataclass
class Receiver:
    """A fake webhook receiver: records raw requests, answers with programmable statuses."""

    statuses: list[int] = field(default_factory=list)  # consumed one per request; then 200
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def handler(request: Request) -> Response:
            raw = await request.body()
            self.requests.append(
                {
                    "path": request.url.path,
                    "raw": raw,
                    "headers": dict(request.headers),
                    "items": json.loads(raw),
                }
            )
            if self.delay:
                await asyncio.sleep(self.delay)
            status = self.statuses.pop(0) if self.statuses else 200
            return Response(b"", status_code=status)

        return Starlette(routes=[Route("/{path:path}", handler, methods=["POST"])])


@pytest.fixture
def sandbox_config() -> cfg.SandboxConfig:
    return cfg.SandboxConfig(webhook_base="http://receiver.test/hook", webhook_timeout=0.5)


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def espo(sandbox_config: cfg.SandboxConfig, receiver: Receiver) -> AsyncIterator[EspoSimulator]:
    sim = EspoSimulator(sandbox_config)
    sim.dispatcher.transport = httpx.ASGITransport(app=receiver.app())
    yield sim
    await sim.dispatcher.stop()


@pytest.fixture
async def ec(espo: EspoSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(espo.app, "http://espo.test") as client:
        yield client


@pytest.fixture
def advo(sandbox_config: cfg.SandboxConfig) -> AdvoSimulator:
    return AdvoSimulator(sandbox_config)


@pytest.fixture
async def ac(advo: AdvoSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(advo.app, "http://advo.test") as client:
        yield client
