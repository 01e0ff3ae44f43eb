"""The one client base both API clients stand on: send, classify, decode, in one place.

``ApiClient.request`` builds the request (JSON body, ``Accept``), sends it through the
client's ``httpx.Auth`` flow and its concurrency slot, reports it to the observer, maps a
status >= 300 to the error tree and decodes the JSON answer, all under the one
``RetryPolicy``. A subclass names its ``system`` and may refine two things:

* ``error_reason(resp)``: the server's explanation (EspoCRM: the ``X-Status-Reason``
  header; Advoware: a known German text of contract.py),
* ``error_detail(resp)``: its free text that may name a person (Advoware: the ``Message`` of
  a 4xx body), the error's ``detail``, kept out of messages and logs,
* ``special_error(resp, what, record_id)``: an error the status table below cannot tell
  (Advoware: a 5xx whose body says the credentials are refused; EspoCRM: a 409 ``modified``).

Status table (``status_error``): 400/422 validation, 401/403 auth, 404 not found, 409
conflict, 429 rate limited, 5xx unavailable (both with ``Retry-After``), other fatal.
Logs carry system, method, path template, record id and status only: never a URL, a
header or a body.

A request that writes (any method but GET/HEAD/OPTIONS) first runs the ``write_check`` of
its task, if one is set: a sync run sets it to "my record lease is still held"
(services/sync/engine.py), so a run whose lease was lost sends nothing more, retries
included.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from contextvars import ContextVar
from typing import Any, ClassVar, Self, TypedDict

import httpx

from services.errors import (
    ApiError,
    AuthError,
    ConflictError,
    FatalError,
    NotFoundError,
    RateLimitedError,
    UnavailableError,
    ValidationError,
)
from services.http.observe import Observer, current_observer, report
from services.http.retry import IDEMPOTENT_METHODS, RetryPolicy, RetrySettings, parse_retry_after
from services.http.transport import json_body, new_async_client, transport_error

log = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Per task (asyncio copies it into the tasks a run starts): raises to stop a write.
write_check: ContextVar[Callable[[], Awaitable[None]] | None] = ContextVar("write_check", default=None)


async def before_write(method: str) -> None:
    """Run the task's write check before a request that writes (see the module docstring)."""
    check = write_check.get()
    if check is not None and method not in READ_METHODS:
        await check()


def status_error(
    resp: httpx.Response,
    *,
    what: str,
    system: str,
    record_id: str | None = None,
    reason: str | None = None,
    detail: str | None = None,
) -> ApiError:
    """The error-tree class for an HTTP status >= 300 (``what`` is e.g. ``"GET CBeteiligte/{id}"``)."""
    status = resp.status_code
    kw: dict[str, Any] = {
        "system": system, "status_code": status, "record_id": record_id, "reason": reason, "detail": detail
    }  # fmt: skip
    if status in (400, 422):
        return ValidationError(f"{what} rejected", **kw)
    if status == 401:
        return AuthError(f"{what} unauthenticated", **kw)
    if status == 403:
        return AuthError(f"{what} forbidden", **kw)
    if status == 404:
        return NotFoundError(f"{what} not found", **kw)
    if status == 409:
        return ConflictError(f"{what} conflict", **kw)
    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
    if status == 429:
        return RateLimitedError(f"{what} rate limited", retry_after=retry_after, **kw)
    if status >= 500:
        return UnavailableError(f"{what} unavailable", retry_after=retry_after, **kw)
    return FatalError(f"{what} unexpected status", **kw)


class ClientOptions(TypedDict, total=False):
    """What the caller of a client may choose besides its settings (keyword arguments of every
    client's constructor): a transport (tests), the retry policy, the observer of each call."""

    transport: httpx.AsyncBaseTransport | None
    retry: RetryPolicy | None
    observer: Observer | None


class ApiClient:
    """Base of ``EspoCrmClient`` and ``AdvowareClient``; a subclass sets ``system`` and ``auth``."""

    system: ClassVar[str]
    auth: httpx.Auth

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        settings: RetrySettings,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 10,
        observer: Observer | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self._retry = retry or RetryPolicy.from_settings(settings)
        self._http = new_async_client(
            base_url=self.base_url, timeout=timeout, transport=transport, max_connections=max_connections
        )
        self._observer = observer

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ hooks
    def error_reason(self, resp: httpx.Response) -> str | None:
        """The server's explanation of an error answer (short, never personal data)."""
        return None

    def error_detail(self, resp: httpx.Response) -> str | None:
        """The server's free text about an error answer that may name a person: the error's
        ``detail``, never in its message or a log (services/errors.py)."""
        return None

    def special_error(self, resp: httpx.Response, what: str, record_id: str | None) -> ApiError | None:
        """An error the status table cannot tell; None leaves it to ``status_error``."""
        return None

    def slot(self) -> AbstractAsyncContextManager[object]:
        """Held around each send (Advoware: a cross-process concurrency slot)."""
        return nullcontext()

    # ------------------------------------------------------------------ request
    def map_error(self, resp: httpx.Response, what: str, record_id: str | None) -> ApiError:
        special = self.special_error(resp, what, record_id)
        if special is not None:
            return special
        return status_error(
            resp,
            what=what,
            system=self.system,
            record_id=record_id,
            reason=self.error_reason(resp),
            detail=self.error_detail(resp),
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        template: str,
        record_id: str | None = None,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Send ``method`` to ``base_url + path`` under the retry policy; the decoded JSON answer.

        ``template`` names the path without ids for logs and messages. ``idempotent`` defaults
        to the method's nature: a POST is only resent when it cannot have reached the server.
        """
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        hdrs = {"Accept": "application/json", **(headers or {})}
        content = None
        if body is not None:
            content = json.dumps(body, ensure_ascii=False).encode()
            hdrs["Content-Type"] = "application/json"
        url = self.base_url + path
        what = f"{method} {template}"

        async def once() -> Any:
            await before_write(method)
            resp = await self._send(method, url, what, record_id, params, content, hdrs)
            if resp.status_code >= 300:
                raise self.map_error(resp, what, record_id)
            return json_body(resp, what=what, system=self.system, record_id=record_id)

        return await self._retry.run(once, idempotent=idempotent)

    async def _send(
        self,
        method: str,
        url: str,
        what: str,
        record_id: str | None,
        params: Mapping[str, str] | None,
        content: bytes | None,
        headers: dict[str, str],
    ) -> httpx.Response:
        observer = self._observer or current_observer()
        async with self.slot():
            start = time.monotonic()
            try:
                resp = await self._http.request(
                    method, url, params=params, content=content, headers=headers, auth=self.auth
                )
            except httpx.TransportError as exc:
                report(observer, self.system, method, None, time.monotonic() - start)
                log.info("%s %s id=%s failed: %s", self.system, what, record_id, type(exc).__name__)
                raise transport_error(exc, system=self.system, record_id=record_id) from None
        report(observer, self.system, method, resp.status_code, time.monotonic() - start)
        log.debug("%s %s id=%s -> %d", self.system, what, record_id, resp.status_code)
        return resp
