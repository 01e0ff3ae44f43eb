"""Async EspoCRM REST client (shared/docs/espocrm-api.md §2-§5).

Stands on the client base (``services.http.base.ApiClient``): every call goes through one
``RetryPolicy``, errors are mapped to ``services.errors`` with EspoCRM's ``X-Status-Reason``
as the reason, and a 409 ``modified`` (an ``X-Version-Number`` that is no longer current)
becomes a ``VersionConflictError`` carrying the record's current values and version.
Authentication is an ``httpx.Auth`` flow (API key or HMAC, services/espocrm/auth.py). 401 is
never retried (a bad key counts towards EspoCRM's per-IP login lockout). Logs carry method,
path template, record id and status only.
"""

from __future__ import annotations

import builtins
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, Unpack
from urllib.parse import quote

import httpx

from services.errors import ApiError, UnavailableError, VersionConflictError
from services.espocrm.auth import ApiKeyAuth, HmacAuth, hmac_authorization
from services.http.base import ApiClient, ClientOptions
from services.http.retry import RetrySettings

if TYPE_CHECKING:
    from pydantic import SecretStr

log = logging.getLogger(__name__)

SYSTEM = "espocrm"
MAX_PAGE_SIZE = 200
VERSION_CONFLICT_REASON = "modified"  # X-Status-Reason of a 409 version conflict (§2.3)

__all__ = ["MAX_PAGE_SIZE", "SYSTEM", "EspoCrmClient", "hmac_authorization"]


class EspoCrmSettings(RetrySettings, Protocol):
    ESPOCRM_API_BASE_URL: str
    ESPOCRM_API_KEY: SecretStr
    ESPOCRM_API_SECRET: SecretStr | None  # None: X-Api-Key authentication, else HMAC
    HTTP_TIMEOUT_SECONDS: float


def _seg(value: str) -> str:
    return quote(str(value), safe="")


class EspoCrmClient(ApiClient):
    system = SYSTEM

    def __init__(self, settings: EspoCrmSettings, **options: Unpack[ClientOptions]) -> None:
        super().__init__(
            settings.ESPOCRM_API_BASE_URL, timeout=settings.HTTP_TIMEOUT_SECONDS, settings=settings, **options
        )
        api_key = settings.ESPOCRM_API_KEY.get_secret_value()
        secret = settings.ESPOCRM_API_SECRET
        api_secret = secret.get_secret_value() if secret is not None else None
        self.auth = (
            HmacAuth(api_key, api_secret, base_url=self.base_url) if api_secret else ApiKeyAuth(api_key)
        )

    # ------------------------------------------------------------------ base hooks
    def error_reason(self, resp: httpx.Response) -> str | None:
        return resp.headers.get("X-Status-Reason") or None

    def special_error(self, resp: httpx.Response, what: str, record_id: str | None) -> ApiError | None:
        if resp.status_code == 409 and self.error_reason(resp) == VERSION_CONFLICT_REASON:
            return _version_conflict(resp, what, record_id)
        return None

    async def probe(self, entity: str) -> None:
        """One cheap authenticated read (a 1-record page without count); raises the error tree
        when EspoCRM cannot answer. For circuit breakers that test whether the system is back."""
        await self.list(entity, select=["id"], max_size=1, no_total=True)

    # ------------------------------------------------------------------ CRUD
    async def get(self, entity: str, id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request(
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
        data = await self.request(
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
        result: dict[str, Any] = await self.request(
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
        result: dict[str, Any] = await self.request(
            "PUT",
            f"{_seg(entity)}/{_seg(id)}",
            template=f"{entity}/{{id}}",
            record_id=id,
            body=dict(data),
            headers=headers,
        )
        return result

    async def delete(self, entity: str, id: str) -> None:
        await self.request("DELETE", f"{_seg(entity)}/{_seg(id)}", template=f"{entity}/{{id}}", record_id=id)

    # ------------------------------------------------------------------ set-up (start-up check)
    async def metadata(self) -> dict[str, Any]:
        """`GET /Metadata`: the entity definitions this user may see."""
        from services.espocrm.admin import metadata

        return await metadata(self)

    async def webhooks(self) -> builtins.list[dict[str, Any]]:
        """This (API) user's webhooks as listed (without secret keys)."""
        from services.espocrm.admin import webhooks

        return await webhooks(self, whole=False)


# Notices (stream posts with an @mention) are services/sync/notify.py's: it posts a `Note` with
# `create` and looks the user up with `get("User", id)`.


def _version_conflict(resp: httpx.Response, what: str, record_id: str | None) -> VersionConflictError:
    """409 ``modified``: body ``{"values": {…current…}, "versionNumber": n}`` (§2.3)."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    values = data.get("values") if isinstance(data, dict) else None
    version = data.get("versionNumber") if isinstance(data, dict) else None
    return VersionConflictError(
        f"{what} version conflict",
        system=SYSTEM,
        record_id=record_id,
        current_values=dict(values) if isinstance(values, dict) else {},
        version_number=version if isinstance(version, int) and not isinstance(version, bool) else None,
    )
