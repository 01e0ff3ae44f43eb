"""Async Advoware client for Beteiligte: the defensive adapter over the assumed contract.

What Advoware is assumed to be (paths, parameters, field names, page size, error texts)
lives in contract.py; this module is how the service talks to it, trusting no more than it
must (shared/docs/advoware-api.md Part 2):

* Per call: concurrency slot (Redis semaphore) -> bearer token (``BearerAuth``: Redis cache,
  renew once on 401) -> request, under the retry policy of the client base. Creates are not
  resent once they may have reached the server (the sync engine owns create idempotency).
* Listings are read through ``PageGuard`` (paging.py): to the empty page, each ``betNr``
  once, a ``ContractError`` instead of a loop or a silent truncation.
* A 404 on a record counts only when confirmed: a second read answers 404 too and the
  listing endpoint still answers (``take=1``); otherwise ``NotFoundUnconfirmedError``
  (transient), so a misrouted connector URL cannot mark records deleted.
* Answers are checked where it is cheap: a read or a PUT answers for the ``betNr`` asked
  for, a create answers with a ``betNr``; otherwise ``ContractError``.

Methods return raw dicts with the field names of contract.py, whatever the server's casing
(fields.py: read case-insensitively); mapping lives in the mapper.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, Unpack

import httpx

from services.advoware.auth import BearerAuth
from services.advoware.concurrency import Limiter, RedisSemaphore
from services.advoware.contract import (
    BETEILIGTE_PATH,
    FIELD_KEY,
    LICENSE_PATH,
    MAX_TAKE,
    MESSAGE_FIELDS,
    PARAM_CHANGED_SINCE,
    PARAM_SKIP,
    PARAM_TAKE,
    betnr_of,
    classify_body_text,
)
from services.advoware.fields import canonical, canonical_page
from services.advoware.paging import PageGuard
from services.advoware.token import SYSTEM, TokenProvider
from services.errors import (
    ApiError,
    ApiErrorDetails,
    AuthError,
    ConnectorOfflineError,
    ContractError,
    NotFoundError,
    NotFoundUnconfirmedError,
    UnavailableError,
)
from services.http.base import ApiClient, ClientOptions
from services.http.retry import RetrySettings, parse_retry_after
from services.http.transport import json_body
from services.store import keys

log = logging.getLogger(__name__)

ALL = "Beteiligte"  # path templates for logs and messages (no ids, no host)
ONE = "Beteiligte/{betNr}"
LICENSE = "license/KuerzelForProduct/{product}"


class AdvowareSettings(RetrySettings, Protocol):
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


class AdvowareClient(ApiClient):
    system = SYSTEM

    def __init__(
        self,
        settings: AdvowareSettings,
        redis: Any,
        *,
        limiter: Limiter | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        timeout = settings.HTTP_TIMEOUT_SECONDS
        limit = settings.ADVOWARE_MAX_CONCURRENCY
        super().__init__(
            settings.ADVOWARE_API_BASE_URL,
            timeout=timeout,
            settings=settings,
            max_connections=max(limit, 2),
            **options,
        )
        self.tokens = TokenProvider(
            http=self._http,
            redis=redis,
            security_url=settings.ADVOWARE_SECURITY_URL,
            app_id=settings.ADVOWARE_APP_ID,
            api_key=_secret(settings.ADVOWARE_API_KEY),
            kanzlei=settings.ADVOWARE_KANZLEI,
            database=settings.ADVOWARE_DATABASE,
            user=settings.ADVOWARE_USER,
            password=_secret(settings.ADVOWARE_PASSWORD),
            role=settings.ADVOWARE_ROLE,
            product=settings.ADVOWARE_PRODUCT_ID,
            lock_ttl=max(10.0, timeout + 5),
            observer=options.get("observer"),
        )
        self.auth = BearerAuth(self.tokens, system=SYSTEM)
        self.limiter: Limiter = limiter or RedisSemaphore(
            redis,
            keys.advoware_concurrency(settings.ADVOWARE_KANZLEI),
            limit,
            lease=max(60.0, 4 * timeout),
        )

    async def aclose(self) -> None:
        close = getattr(self.limiter, "close", None)
        if close is not None:
            await close()
        await super().aclose()

    # ------------------------------------------------------------------ base hooks
    def slot(self) -> AbstractAsyncContextManager[object]:
        return self.limiter.slot()

    def error_reason(self, resp: httpx.Response) -> str | None:
        found = classify_body_text(resp.text)
        return found[1] if found else None

    def error_detail(self, resp: httpx.Response) -> str | None:
        """The ``Message`` of a 400/409/422 body: it may quote what was sent (a name), so it
        is the error's detail, for the record's failure reason only, never a log."""
        if resp.status_code in (400, 409, 422) and not classify_body_text(resp.text):
            return _message(resp)
        return None

    def special_error(self, resp: httpx.Response, what: str, record_id: str | None) -> ApiError | None:
        found = classify_body_text(resp.text) if resp.status_code >= 500 else None
        if found is None:
            return None
        kind, reason = found
        details = ApiErrorDetails(status_code=resp.status_code, reason=reason, record_id=record_id)
        if kind == "offline":  # the connector never passed the request on (safe to repeat)
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            return ConnectorOfflineError(
                f"{what} not passed on (connector offline)", system=SYSTEM, retry_after=retry_after, **details
            )
        return AuthError(f"{what} refused (configuration)", system=SYSTEM, **details)

    # ------------------------------------------------------------------ Beteiligte
    async def get_beteiligter(self, betnr: int) -> dict[str, Any]:
        """The record; ``NotFoundError`` only for a confirmed 404 (see the module docstring)."""
        try:
            return await self._read(betnr)
        except NotFoundError as first:
            log.info("advoware GET %s id=%s -> 404; confirming", ONE, betnr)
            record = await self._confirm_not_found(betnr, first)
            if record is None:
                raise first
            return record

    async def iter_beteiligte(
        self, *, changed_since_local: str | None = None, take: int = MAX_TAKE, start: int = 0
    ) -> AsyncIterator[dict[str, Any]]:
        """All Beteiligte (changed since a *local* ISO datetime), each ``betNr`` once (paging.py);
        `start` skips that many rows (a resumed listing: the identity index build)."""
        if not 1 <= take <= MAX_TAKE:
            raise ValueError(f"take must be 1..{MAX_TAKE}")
        if start < 0:
            raise ValueError("start must be >= 0")
        guard = PageGuard(take, what=f"GET {ALL}", start=start)
        while not guard.done:
            params = {PARAM_SKIP: str(guard.skip), PARAM_TAKE: str(take)}
            if changed_since_local:
                params[PARAM_CHANGED_SINCE] = changed_since_local
            page = await self.request("GET", BETEILIGTE_PATH, template=ALL, params=params)
            for item in guard.accept(canonical_page(page)):
                yield item

    async def sample_page(
        self, *, skip: int = 0, take: int = MAX_TAKE, changed_since_local: str | None = None
    ) -> tuple[Any, str | None]:
        """One listing page exactly as the server sent it (its own field names, no PageGuard, no
        retry) and the answer's `Date` header: what `check-advoware` compares with the contract."""
        params = {PARAM_SKIP: str(skip), PARAM_TAKE: str(take)}
        if changed_since_local:
            params[PARAM_CHANGED_SINCE] = changed_since_local
        what = f"GET {ALL}"
        headers = {"Accept": "application/json"}
        resp = await self._send("GET", self.base_url + BETEILIGTE_PATH, what, None, params, None, headers)
        if resp.status_code >= 300:
            raise self.map_error(resp, what, None)
        return json_body(resp, what=what, system=SYSTEM), resp.headers.get("date")

    async def licensed_users(self, product: int) -> list[str] | None:
        """The Kürzel licensed for `product`, or None when the server does not offer the list (404)."""
        try:
            data = await self.request("GET", LICENSE_PATH.format(product=int(product)), template=LICENSE)
        except NotFoundError:
            return None
        if not isinstance(data, list):
            raise ContractError(
                f"GET {LICENSE}: the answer is not a JSON array", system=SYSTEM, status_code=200
            )
        return [str(item) for item in data]

    async def probe(self) -> None:
        """One cheap authenticated read (a one-record page); raises the error tree when the
        listing endpoint does not answer. For circuit breakers and 404 confirmation."""
        page = await self.request(
            "GET", BETEILIGTE_PATH, template=ALL, params={PARAM_SKIP: "0", PARAM_TAKE: "1"}
        )
        if not isinstance(page, list):
            raise ContractError(f"GET {ALL}: the answer is not a JSON array", system=SYSTEM, status_code=200)

    async def create_beteiligter(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """POST; not resent once it may have reached the server (only connect failures are).
        The answer must carry the new ``betNr`` (``ContractError`` otherwise)."""
        data = _expect_dict(
            canonical(await self.request("POST", BETEILIGTE_PATH, template=ALL, body=dict(payload))), "POST"
        )
        if betnr_of(data) is None:
            raise ContractError(
                f"POST {ALL}: the answer carries no {FIELD_KEY}", system=SYSTEM, status_code=201
            )
        return data

    async def update_beteiligter(self, betnr: int, payload: Mapping[str, Any]) -> dict[str, Any]:
        """PUT the full object (read, modify, write); the answer must be for the same ``betNr``."""
        path, rid = f"{BETEILIGTE_PATH}/{int(betnr)}", str(betnr)
        try:
            data = await self.request("PUT", path, template=ONE, record_id=rid, body=dict(payload))
        except NotFoundError as first:
            log.info("advoware PUT %s id=%s -> 404; confirming", ONE, betnr)
            if await self._confirm_not_found(betnr, first) is not None:
                raise _unconfirmed(first, rid, "a second read found the record") from None
            raise first
        return _expect_same(_expect_dict(canonical(data), "PUT", rid), betnr, "PUT")

    # ------------------------------------------------------------------ defences
    async def _read(self, betnr: int) -> dict[str, Any]:
        rid = str(betnr)
        data = await self.request("GET", f"{BETEILIGTE_PATH}/{int(betnr)}", template=ONE, record_id=rid)
        data = _expect_dict(canonical(data), "GET", rid)
        if FIELD_KEY in data:
            _expect_same(data, betnr, "GET")
        return data

    async def _confirm_not_found(self, betnr: int, first: NotFoundError) -> dict[str, Any] | None:
        """After a 404: a second read, then the listing. The record when the second read finds
        it (the first 404 was a glitch); None when both confirm the 404; and
        ``NotFoundUnconfirmedError`` when the listing endpoint does not answer either."""
        try:
            return await self._read(betnr)
        except NotFoundError:
            pass
        try:
            await self.probe()
        except ApiError as exc:
            why = f"the listing does not answer ({type(exc).__name__})"
            raise _unconfirmed(first, str(betnr), why) from None
        return None


def _unconfirmed(first: NotFoundError, record_id: str, why: str) -> NotFoundUnconfirmedError:
    return NotFoundUnconfirmedError(
        f"404 not confirmed: {why}", system=SYSTEM, status_code=first.status_code, record_id=record_id
    )


def _expect_dict(data: Any, method: str, record_id: str | None = None) -> dict[str, Any]:
    if not isinstance(data, dict):
        template = ALL if method == "POST" else ONE
        raise UnavailableError(
            f"{method} {template}: expected a JSON object", system=SYSTEM, record_id=record_id
        )
    return data


def _expect_same(data: dict[str, Any], betnr: int, method: str) -> dict[str, Any]:
    answered = betnr_of(data)
    if answered != int(betnr):
        raise ContractError(
            f"{method} {ONE}: the answer is for {FIELD_KEY}={answered}", system=SYSTEM, record_id=str(betnr)
        )
    return data


def _message(resp: httpx.Response) -> str | None:
    try:
        data = resp.json()
    except ValueError:
        return None
    if isinstance(data, dict):
        for name in MESSAGE_FIELDS:
            if isinstance(data.get(name), str):
                return str(data[name])
    return None
