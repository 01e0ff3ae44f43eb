"""Async EspoCRM REST client (shared/docs/espocrm-api.md §2-§5).

Every call goes through one ``RetryPolicy``; errors are mapped to ``services.errors``
with EspoCRM's ``X-Status-Reason`` as the reason. 401 is never retried (a bad key counts
towards EspoCRM's per-IP login lockout). Logs carry method, path template, record id and
status only.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

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
from services.http import RetryPolicy, json_body, new_async_client, parse_retry_after, transport_error

if TYPE_CHECKING:
    from services.settings import Settings

log = logging.getLogger(__name__)

SYSTEM = "espocrm"
MAX_PAGE_SIZE = 200


def hmac_authorization(api_key: str, secret: str, method: str, path: str) -> str:
    """``X-Hmac-Authorization`` value; ``path`` is the part after ``/api/v1/``, no query string."""
    message = f"{method.upper()} /{path.lstrip('/')}"
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return base64.b64encode(f"{api_key}:{digest}".encode()).decode()


def _seg(value: str) -> str:
    return quote(str(value), safe="")


class EspoCrmClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        api_secret: str | None = None,
        timeout: float = 15,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._base = base_url.rstrip("/") + "/"
        self._api_key = api_key
        self._api_secret = api_secret
        self._retry = retry or RetryPolicy()
        self._http = new_async_client(timeout=timeout, transport=transport)
        self._notification_forbidden = False

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> EspoCrmClient:
        secret = settings.ESPOCRM_API_SECRET
        return cls(
            settings.ESPOCRM_API_BASE_URL,
            settings.ESPOCRM_API_KEY.get_secret_value(),
            api_secret=secret.get_secret_value() if secret is not None else None,
            timeout=settings.HTTP_TIMEOUT_SECONDS,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"EspoCrmClient(base_url={self._base!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> EspoCrmClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ transport
    def _auth_headers(self, method: str, path: str) -> dict[str, str]:
        if self._api_secret:
            return {"X-Hmac-Authorization": hmac_authorization(self._api_key, self._api_secret, method, path)}
        return {"X-Api-Key": self._api_key}

    async def _request(
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
        if idempotent is None:
            idempotent = method in ("GET", "PUT", "DELETE")
        hdrs = {"Accept": "application/json", **self._auth_headers(method, path), **(headers or {})}
        content = None
        if body is not None:
            content = json.dumps(body, ensure_ascii=False).encode()
            hdrs["Content-Type"] = "application/json"

        async def once() -> Any:
            try:
                resp = await self._http.request(
                    method, self._base + path, params=params, content=content, headers=hdrs
                )
            except httpx.TransportError as exc:
                log.info("espocrm %s %s id=%s failed: %s", method, template, record_id, type(exc).__name__)
                raise transport_error(exc, system=SYSTEM, record_id=record_id) from None
            log.debug("espocrm %s %s id=%s -> %d", method, template, record_id, resp.status_code)
            if resp.status_code >= 300:
                raise _map_error(resp, method, template, record_id)
            return json_body(resp, what=f"{method} {template}", system=SYSTEM, record_id=record_id)

        return await self._retry.run(once, idempotent=idempotent)

    # ------------------------------------------------------------------ CRUD
    async def get(self, entity: str, id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._request(
            "GET", f"{_seg(entity)}/{_seg(id)}", template=f"{entity}/{{id}}", record_id=id
        )
        return result

    async def list(
        self,
        entity: str,
        *,
        where: Sequence[Mapping[str, Any]] | None = None,
        select: str | Sequence[str] | None = None,
        order_by: str | None = None,
        order: str = "asc",
        offset: int = 0,
        max_size: int = MAX_PAGE_SIZE,
        no_total: bool = False,
    ) -> tuple[int, list[dict[str, Any]]]:
        """One page: ``(total, records)``. With ``no_total`` total is -1 (more) or -2 (no more)."""
        if not 1 <= max_size <= MAX_PAGE_SIZE:
            raise ValueError(f"max_size must be 1..{MAX_PAGE_SIZE}")
        if order not in ("asc", "desc"):
            raise ValueError("order must be 'asc' or 'desc'")
        search: dict[str, Any] = {"offset": offset, "maxSize": max_size}
        if where:
            search["where"] = [dict(w) for w in where]
        if select:
            search["select"] = select if isinstance(select, str) else ",".join(select)
        if order_by:
            search["orderBy"] = order_by
            search["order"] = order
        data = await self._request(
            "GET",
            _seg(entity),
            template=entity,
            params={"searchParams": json.dumps(search, separators=(",", ":"))},
            headers={"X-No-Total": "true"} if no_total else None,
        )
        if not isinstance(data, dict) or not isinstance(data.get("list"), list):
            raise UnavailableError(f"GET {entity}: unexpected list response", system=SYSTEM, status_code=200)
        return int(data.get("total", -1)), data["list"]

    async def iterate(
        self,
        entity: str,
        *,
        where: Sequence[Mapping[str, Any]] | None = None,
        select: str | Sequence[str] | None = None,
        order_by: str = "id",
        order: str = "asc",
        page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncIterator[dict[str, Any]]:
        """All matching records, page by page (``X-No-Total``), stopping on a short page.

        Offset paging: records changing while iterating can shift between pages; callers that
        poll by ``modifiedAt`` re-read with an overlap and apply idempotently.
        """
        offset = 0
        while True:
            total, page = await self.list(
                entity,
                where=where,
                select=select,
                order_by=order_by,
                order=order,
                offset=offset,
                max_size=page_size,
                no_total=True,
            )
            for record in page:
                yield record
            if len(page) < page_size or total == -2:
                return
            offset += len(page)

    async def list_ids_where(self, entity: str, where: Sequence[Mapping[str, Any]]) -> builtins.list[str]:
        return [str(r["id"]) async for r in self.iterate(entity, where=where, select=["id"])]

    async def create(
        self, entity: str, data: Mapping[str, Any], *, skip_duplicate_check: bool = False
    ) -> dict[str, Any]:
        """POST (not retried after it may have reached the server: the caller owns idempotency)."""
        result: dict[str, Any] = await self._request(
            "POST",
            _seg(entity),
            template=entity,
            body=dict(data),
            headers={"X-Skip-Duplicate-Check": "true"} if skip_duplicate_check else None,
        )
        return result

    async def update(
        self, entity: str, id: str, data: Mapping[str, Any], *, version_number: int | None = None
    ) -> dict[str, Any]:
        headers = {"X-Version-Number": str(version_number)} if version_number is not None else None
        result: dict[str, Any] = await self._request(
            "PUT",
            f"{_seg(entity)}/{_seg(id)}",
            template=f"{entity}/{{id}}",
            record_id=id,
            body=dict(data),
            headers=headers,
        )
        return result

    async def delete(self, entity: str, id: str) -> None:
        await self._request("DELETE", f"{_seg(entity)}/{_seg(id)}", template=f"{entity}/{{id}}", record_id=id)

    # ------------------------------------------------------------------ notifications
    async def notify(
        self,
        user_id: str,
        message: str,
        *,
        parent_type: str,
        parent_id: str | None,
        user_name: str | None = None,
    ) -> str:
        """Notify a user; returns ``"notification"`` or ``"note"`` (the channel that worked).

        ``POST /Notification`` is 403 for API users, so on 403 this falls back to a stream
        ``Note`` on the record with an @mention (remembered per instance). Neither POST is
        retried once it may have reached the server (a duplicate message is worse than none).
        """
        if not self._notification_forbidden:
            try:
                await self._request(
                    "POST",
                    "Notification",
                    template="Notification",
                    record_id=user_id,
                    body={"type": "Message", "userId": user_id, "message": message},
                )
                return "notification"
            except AuthError as exc:
                if exc.status_code != 403:
                    raise
                self._notification_forbidden = True
                log.info("espocrm Notification forbidden (403); using stream note with @mention")
        if not user_name or not parent_id:
            raise ValidationError(
                "Notification is forbidden and the @mention fallback needs a user name and a parent record",
                system=SYSTEM,
                record_id=user_id,
            )
        await self._request(
            "POST",
            "Note",
            template="Note",
            record_id=parent_id,
            body={
                "type": "Post",
                "parentType": parent_type,
                "parentId": parent_id,
                "post": f"@{user_name} {message}",
            },
        )
        return "note"


def _map_error(resp: httpx.Response, method: str, template: str, record_id: str | None) -> ApiError:
    status = resp.status_code
    reason = resp.headers.get("X-Status-Reason") or None
    what = f"{method} {template}"
    kw: dict[str, Any] = {"system": SYSTEM, "status_code": status, "record_id": record_id}
    if status == 400:
        return ValidationError(f"{what} rejected", reason=reason, **kw)
    if status == 401:
        # No reason text besides e.g. second-step-required; never retried (login lockout).
        return AuthError(f"{what} unauthenticated", reason=reason, **kw)
    if status == 403:
        return AuthError(f"{what} forbidden", reason=reason, **kw)
    if status == 404:
        return NotFoundError(f"{what} not found", **kw)
    if status == 409:
        return ConflictError(f"{what} conflict", reason=reason, **kw)
    if status == 422:
        return ValidationError(f"{what} rejected", reason=reason, **kw)
    if status == 429:
        return RateLimitedError(
            f"{what} rate limited", retry_after=parse_retry_after(resp.headers.get("Retry-After")), **kw
        )
    if status >= 500:
        err = UnavailableError(f"{what} unavailable", reason=reason, **kw)
        err.retry_after = parse_retry_after(resp.headers.get("Retry-After"))  # type: ignore[attr-defined]
        return err
    return FatalError(f"{what} unexpected status", reason=reason, **kw)
