"""Advoware bearer authentication as an ``httpx.Auth`` flow, with renew-once-on-401.

Per request: take a token from the ``TokenProvider`` (memo → Redis cache → one token request
across all processes), send ``Authorization: Bearer …``. A 401 drops the cached token (only
if it is still the one that failed), fetches a new one and resends once; the answer to that
second attempt is final (a second 401 becomes an ``AuthError`` in the client base).

A token that cannot be had for a transient reason (security gateway down, rate limited) is a
``ConnectFailedError``: nothing reached the Beteiligte endpoint, so even a create may be resent.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING

import httpx

from services.errors import ConnectFailedError, TransientError

if TYPE_CHECKING:
    from services.advoware.token import TokenProvider

log = logging.getLogger(__name__)


class BearerAuth(httpx.Auth):
    def __init__(self, tokens: TokenProvider, *, system: str = "advoware") -> None:
        self._tokens = tokens
        self._system = system

    def __repr__(self) -> str:
        return "BearerAuth()"

    async def _token(self, request: httpx.Request) -> str:
        try:
            return await self._tokens.get()
        except TransientError as exc:
            raise ConnectFailedError(
                f"{request.method}: no token ({type(exc).__name__})",
                system=self._system,
                status_code=exc.status_code,
                reason=exc.reason,
                retry_after=exc.retry_after,
            ) from None

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._token(request)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        log.info("advoware %s -> 401; renewing the token once", request.method)
        await self._tokens.invalidate(token)
        token = await self._token(request)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("BearerAuth needs an httpx.AsyncClient (the token lives in async Redis)")
