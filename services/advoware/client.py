"""Async Advoware client for Beteiligte: the ONE place that knows Advoware's assumed contract.

Paths, query parameter names and error texts below are the project's assumptions
(shared/docs/advoware-api.md Part 2); correct them here once the firm's Swagger is known.

Per call: concurrency slot (Redis semaphore) -> bearer token (Redis cache) -> request; a 401
drops the cached token (only if it is the one that failed), re-authenticates once and retries
once; a second 401 is an ``AuthError``. The whole thing runs under the retry policy; creates
are not retried once they may have reached the server (the sync engine owns create
idempotency). Methods return raw dicts; mapping lives in the mapper.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import httpx

from services.advoware.concurrency import Limiter, RedisSemaphore
from services.advoware.token import SYSTEM, TokenProvider, classify_body_text
from services.errors import (
    ApiError,
    AuthError,
    ConflictError,
    FatalError,
    NotFoundError,
    RateLimitedError,
    TransientError,
    UnavailableError,
    ValidationError,
)
from services.http import (
    ConnectFailedError,
    RetryPolicy,
    json_body,
    new_async_client,
    parse_retry_after,
    transport_error,
)
from services.redis_store import key

log = logging.getLogger(__name__)

# --- the assumed contract ------------------------------------------------------------
BETEILIGTE_PATH = "api/v1/advonet/Beteiligte"
PARAM_SKIP = "skip"
PARAM_TAKE = "take"
PARAM_CHANGED_SINCE = "geaendertAb"
FIELD_KEY = "betNr"
MAX_TAKE = 100


class AdvowareSettings(Protocol):
    ADVOWARE_API_BASE_URL: str
    ADVOWARE_SECURITY_URL: str
    ADVOWARE_PRODUCT_ID: int
    ADVOWARE_APP_ID: str
    ADVOWARE_API_KEY: Any  # SecretStr or str
    ADVOWARE_KANZLEI: str
    ADVOWARE_DATABASE: str
    ADVOWARE_USER: str
    ADVOWARE_ROLE: int
    ADVOWARE_PASSWORD: Any  # SecretStr or str
    ADVOWARE_MAX_CONCURRENCY: int
    HTTP_TIMEOUT_SECONDS: float


def _secret(value: Any) -> str:
    getter = getattr(value, "get_secret_value", None)
    return str(getter() if getter is not None else value)


def _base(url: str) -> str:
    return url if url.endswith("/") else url + "/"


class AdvowareClient:
    def __init__(
        self,
        settings: AdvowareSettings,
        redis: Any,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        limiter: Limiter | None = None,
        token_margin: float = 60.0,
    ) -> None:
        timeout = float(getattr(settings, "HTTP_TIMEOUT_SECONDS", 15.0))
        limit = int(getattr(settings, "ADVOWARE_MAX_CONCURRENCY", 4))
        self._base = _base(settings.ADVOWARE_API_BASE_URL)
        self._url = self._base + BETEILIGTE_PATH
        self._retry = retry or RetryPolicy()
        self._http = new_async_client(timeout=timeout, transport=transport, max_connections=max(limit, 2))
        self.tokens = TokenProvider(
            http=self._http,
            redis=redis,
            security_url=_base(settings.ADVOWARE_SECURITY_URL),
            app_id=settings.ADVOWARE_APP_ID,
            api_key=_secret(settings.ADVOWARE_API_KEY),
            kanzlei=settings.ADVOWARE_KANZLEI,
            database=settings.ADVOWARE_DATABASE,
            user=settings.ADVOWARE_USER,
            password=_secret(settings.ADVOWARE_PASSWORD),
            role=int(getattr(settings, "ADVOWARE_ROLE", 2)),
            product=int(getattr(settings, "ADVOWARE_PRODUCT_ID", 64)),
            margin=token_margin,
            lock_ttl=max(10.0, timeout + 5),
        )
        self.limiter: Limiter = limiter or RedisSemaphore(
            redis,
            key("advoware", "concurrency", settings.ADVOWARE_KANZLEI),
            limit,
            lease=max(60.0, 4 * timeout),
        )

    @classmethod
    def from_settings(cls, settings: AdvowareSettings, redis: Any, **kwargs: Any) -> AdvowareClient:
        return cls(settings, redis, **kwargs)

    def __repr__(self) -> str:
        return f"AdvowareClient(base_url={self._base!r})"

    async def aclose(self) -> None:
        close = getattr(self.limiter, "close", None)
        if close is not None:
            await close()
        await self._http.aclose()

    async def __aenter__(self) -> AdvowareClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ Beteiligte
    async def get_beteiligter(self, betnr: int) -> dict[str, Any]:
        data = await self._call(
            "GET",
            f"{self._url}/{int(betnr)}",
            template="Beteiligte/{betNr}",
            record_id=str(betnr),
            idempotent=True,
        )
        return _expect_dict(data, "GET Beteiligte/{betNr}", str(betnr))

    async def iter_beteiligte(
        self, *, changed_since_local: str | None = None, take: int = MAX_TAKE, start: int = 0
    ) -> AsyncIterator[dict[str, Any]]:
        """All Beteiligte (changed since a *local* ISO datetime), paged, deduplicated by betNr;
        `start` skips that many rows (a resumed listing: the identity index build)."""
        if not 1 <= take <= MAX_TAKE:
            raise ValueError(f"take must be 1..{MAX_TAKE}")
        seen: set[Any] = set()
        skip = start
        while True:
            params: dict[str, str] = {PARAM_SKIP: str(skip), PARAM_TAKE: str(take)}
            if changed_since_local:
                params[PARAM_CHANGED_SINCE] = changed_since_local
            page = await self._call("GET", self._url, template="Beteiligte", params=params, idempotent=True)
            if not isinstance(page, list):
                raise UnavailableError(
                    "GET Beteiligte: expected a JSON array", system=SYSTEM, status_code=200
                )
            for item in page:
                if not isinstance(item, dict):
                    continue
                betnr = item.get(FIELD_KEY)
                if betnr is not None:
                    if betnr in seen:
                        continue
                    seen.add(betnr)
                yield item
            if len(page) < take:
                return
            skip += len(page)

    async def create_beteiligter(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """POST; not retried once it may have reached the server (only connect failures are)."""
        data = await self._call(
            "POST", self._url, template="Beteiligte", body=dict(payload), idempotent=False
        )
        return _expect_dict(data, "POST Beteiligte", None)

    async def update_beteiligter(self, betnr: int, payload: Mapping[str, Any]) -> dict[str, Any]:
        """PUT the full object (read, modify, write)."""
        data = await self._call(
            "PUT",
            f"{self._url}/{int(betnr)}",
            template="Beteiligte/{betNr}",
            record_id=str(betnr),
            body=dict(payload),
            idempotent=True,
        )
        return _expect_dict(data, "PUT Beteiligte/{betNr}", str(betnr))

    # ------------------------------------------------------------------ transport
    async def _call(
        self,
        method: str,
        url: str,
        *,
        template: str,
        idempotent: bool,
        record_id: str | None = None,
        params: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Any:
        content = json.dumps(body, ensure_ascii=False).encode() if body is not None else None

        async def once() -> Any:
            try:
                token = await self.tokens.get()
            except TransientError as exc:
                # Nothing was sent to the Beteiligte endpoint: safe to retry even a create.
                raise ConnectFailedError(
                    f"{method} {template}: no token ({type(exc).__name__})",
                    system=SYSTEM,
                    status_code=exc.status_code,
                    reason=exc.reason,
                    record_id=record_id,
                ) from None
            async with self.limiter.slot():
                resp = await self._send(method, url, token, template, record_id, params, content)
                if resp.status_code == 401:
                    log.info("advoware %s %s id=%s -> 401; renewing token once", method, template, record_id)
                    await self.tokens.invalidate(token)
                    token = await self.tokens.get()
                    resp = await self._send(method, url, token, template, record_id, params, content)
            if resp.status_code >= 300:
                raise _map_error(resp, method, template, record_id)
            return json_body(resp, what=f"{method} {template}", system=SYSTEM, record_id=record_id)

        return await self._retry.run(once, idempotent=idempotent)

    async def _send(
        self,
        method: str,
        url: str,
        token: str,
        template: str,
        record_id: str | None,
        params: Mapping[str, str] | None,
        content: bytes | None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            resp = await self._http.request(method, url, params=params, content=content, headers=headers)
        except httpx.TransportError as exc:
            log.info("advoware %s %s id=%s failed: %s", method, template, record_id, type(exc).__name__)
            raise transport_error(exc, system=SYSTEM, record_id=record_id) from None
        log.debug("advoware %s %s id=%s -> %d", method, template, record_id, resp.status_code)
        return resp


def _expect_dict(data: Any, what: str, record_id: str | None) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise UnavailableError(f"{what}: expected a JSON object", system=SYSTEM, record_id=record_id)
    return data


def _message(resp: httpx.Response) -> str | None:
    try:
        data = resp.json()
    except ValueError:
        return None
    if isinstance(data, dict):
        for name in ("Message", "message"):
            if isinstance(data.get(name), str):
                return str(data[name])
    return None


def _map_error(resp: httpx.Response, method: str, template: str, record_id: str | None) -> ApiError:
    status = resp.status_code
    what = f"{method} {template}"
    kw: dict[str, Any] = {"system": SYSTEM, "status_code": status, "record_id": record_id}
    if status == 400:
        return ValidationError(f"{what} rejected", reason=_message(resp), **kw)
    if status in (401, 403):
        return AuthError(f"{what} unauthorized" if status == 401 else f"{what} forbidden", **kw)
    if status == 404:
        return NotFoundError(f"{what} not found", **kw)
    if status == 409:
        return ConflictError(f"{what} conflict", reason=_message(resp), **kw)
    if status == 429:
        return RateLimitedError(
            f"{what} rate limited", retry_after=parse_retry_after(resp.headers.get("Retry-After")), **kw
        )
    if status >= 500:
        found = classify_body_text(resp.text)
        if found and found[0] == "auth":
            return AuthError(f"{what} refused (configuration)", reason=found[1], **kw)
        err = UnavailableError(f"{what} unavailable", reason=found[1] if found else None, **kw)
        err.retry_after = parse_retry_after(resp.headers.get("Retry-After"))  # type: ignore[attr-defined]
        return err
    if status == 422:
        return ValidationError(f"{what} rejected", reason=_message(resp), **kw)
    return FatalError(f"{what} unexpected status", **kw)
