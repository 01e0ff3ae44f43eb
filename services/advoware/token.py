"""Advoware bearer token: HMAC-SHA512 request, cached in Redis, fetched single-flight.

Token request (shared/docs/advoware-api.md §1.3)::

    message          = f"{Product}:{AppID}:{Nonce}:{RequestTimeStamp}"
    HMAC512Signature = base64( HMAC-SHA512( base64_decode(API_KEY), message ) )

Cache: ``vmh:advoware:token:<kanzlei>:<user>`` = JSON ``{access_token, expires_at}`` with a
Redis TTL that ends ``margin`` seconds before the token expires. Every Motia event is a fresh
process, so the cache and the single-flight live in Redis: one process holds the short lease
``…:lock`` (the one lease of services/store/lease.py, on redis-py's ``Lock``) and requests the
token; the others poll the cache. The lease is released atomically by its owner only; it also
expires on its own, so a crashed holder blocks the others for at most ``lock_ttl``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from services.advoware.contract import LOGIN_PATH, classify_body_text
from services.errors import ApiError, AuthError, UnavailableError, ValidationError
from services.http.observe import Observer, current_observer, report
from services.http.transport import transport_error
from services.store import keys
from services.store.lease import Lease

if TYPE_CHECKING:
    import httpx
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

SYSTEM = "advoware"
OBSERVED_SYSTEM = "advoware-token"  # the name token requests are reported under (observe.py)

_COMPARE_AND_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

DEFAULT_LIFETIME = 600.0  # used when the response names no lifetime (conservative)


def advoware_signature(api_key_b64: str, product: int, app_id: str, nonce: str, timestamp: str) -> str:
    msg = f"{product}:{app_id}:{nonce}:{timestamp}".encode()
    return base64.b64encode(hmac.new(base64.b64decode(api_key_b64), msg, hashlib.sha512).digest()).decode()


def request_timestamp(now: datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``, e.g. ``2026-08-30T00:00:00.000Z``."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


async def compare_and_delete(redis: Redis, name: str, expected: str) -> bool:
    """Delete ``name`` only if it still holds ``expected`` (atomic Lua, one round trip)."""
    return bool(await redis.eval(_COMPARE_AND_DELETE, 1, name, expected))  # type: ignore[misc]


class TokenProvider:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        redis: Redis,
        security_url: str,
        app_id: str,
        api_key: str,
        kanzlei: str,
        database: str,
        user: str,
        password: str,
        role: int,
        product: int,
        margin: float = 60.0,
        lock_ttl: float = 20.0,
        clock: Callable[[], float] = time.time,
        observer: Observer | None = None,
    ) -> None:
        self._http = http
        self._redis = redis
        self._url = security_url.rstrip("/") + "/" + LOGIN_PATH
        self._app_id = app_id
        self._api_key = api_key
        self._kanzlei = kanzlei
        self._database = database
        self._user = user
        self._password = password
        self._role = role
        self._product = product
        self.margin = margin
        self.lock_ttl = lock_ttl
        self._clock = clock
        self._observer = observer
        self.cache_key = keys.advoware_token(kanzlei, user)
        self.lock_key = keys.advoware_token_lock(kanzlei, user)
        self.requests_made = 0  # token requests sent by this instance (for tests/metrics)
        # The token this instance last read or fetched, with its expiry: every Advoware call
        # asks for the token, and a Redis round trip per call is wasted while it is valid.
        # A 401 with it (`invalidate`) drops it here too.
        self._memo: tuple[str, float] | None = None

    def __repr__(self) -> str:
        return f"TokenProvider(kanzlei={self._kanzlei!r}, user={self._user!r})"

    # ------------------------------------------------------------------ cache
    async def _cached(self) -> str | None:
        raw = await self._redis.get(self.cache_key)
        if not raw:
            return None
        try:
            data = json.loads(raw)
            token, expires_at = data["access_token"], float(data["expires_at"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires_at - self.margin <= self._clock():
            return None
        self._memo = (str(token), expires_at)
        return str(token)

    async def get(self) -> str:
        """A valid access token: from the cache, or fetched by exactly one process at a time."""
        if self._memo is not None and self._memo[1] - self.margin > self._clock():
            return self._memo[0]
        token = await self._cached()
        if token:
            return token
        deadline = time.monotonic() + self.lock_ttl + 5
        delay = 0.02
        while True:
            lease = Lease(self._redis, self.lock_key, self.lock_ttl)
            if await lease.acquire():
                try:
                    token = await self._cached()  # filled while we were waiting for the lease?
                    if token:
                        return token
                    return await self._fetch_and_store()
                finally:
                    await lease.release()
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.25)
            token = await self._cached()
            if token:
                return token
            if time.monotonic() > deadline:
                raise UnavailableError("timed out waiting for the token lease", system=SYSTEM)

    async def invalidate(self, failed_token: str) -> bool:
        """Drop the cached token, but only if it is the one that just failed (a 401)."""
        if self._memo is not None and self._memo[0] == failed_token:
            self._memo = None
        raw = await self._redis.get(self.cache_key)
        if not raw:
            return False
        try:
            cached = json.loads(raw).get("access_token")
        except (ValueError, AttributeError):
            cached = None
        if cached is not None and cached != failed_token:
            return False  # someone already renewed it
        return await compare_and_delete(self._redis, self.cache_key, raw)

    # ------------------------------------------------------------------ token request
    def build_request(self, *, nonce: str | None = None, timestamp: str | None = None) -> dict[str, Any]:
        nonce = nonce or str(uuid.uuid4())
        timestamp = timestamp or request_timestamp()
        return {
            "AppID": self._app_id,
            "Kanzlei": self._kanzlei,
            "Database": self._database,
            "User": self._user,
            "Password": self._password,
            "Role": self._role,
            "Product": self._product,
            "Nonce": nonce,
            "RequestTimeStamp": timestamp,
            "HMAC512Signature": advoware_signature(
                self._api_key, self._product, self._app_id, nonce, timestamp
            ),
        }

    async def _fetch_and_store(self) -> str:
        import httpx

        self.requests_made += 1
        observer = self._observer or current_observer()
        start = time.monotonic()
        try:
            resp = await self._http.post(self._url, json=self.build_request())
        except httpx.TransportError as exc:
            report(observer, OBSERVED_SYSTEM, "POST", None, time.monotonic() - start)
            log.info("advoware POST Token failed: %s", type(exc).__name__)
            raise transport_error(exc, system=SYSTEM) from None
        report(observer, OBSERVED_SYSTEM, "POST", resp.status_code, time.monotonic() - start)
        log.debug("advoware POST Token -> %d", resp.status_code)
        if resp.status_code >= 300:
            raise _token_error(resp)
        try:
            data = resp.json()
            token = str(data["access_token"])
        except (ValueError, KeyError, TypeError):
            raise UnavailableError(
                "token response without access_token", system=SYSTEM, status_code=resp.status_code
            ) from None
        now = self._clock()
        expires_at = now + _lifetime(data, now)
        ttl_ms = int((expires_at - self.margin - now) * 1000)
        self._memo = (token, expires_at)
        if ttl_ms > 0:
            await self._redis.set(
                self.cache_key, json.dumps({"access_token": token, "expires_at": expires_at}), px=ttl_ms
            )
        else:
            log.warning("advoware token lifetime is shorter than the %ss margin; not cached", self.margin)
        return token


def _lifetime(data: dict[str, Any], now: float) -> float:
    expires_in = data.get("expires_in")
    if isinstance(expires_in, int | float) and expires_in > 0:
        return float(expires_in)
    exp = data.get("expiration_utc")
    if isinstance(exp, str) and exp:
        try:
            text = exp.strip().replace("Z", "+00:00")
            head, dot, rest = text.partition(".")
            if dot:  # strip fractional seconds (up to 7 digits), keep any offset
                tail = rest.lstrip("0123456789")
                text = head + tail
            dt = datetime.fromisoformat(text)
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            return max(0.0, dt.timestamp() - now)
        except ValueError:
            pass
    log.warning("advoware token response names no lifetime; assuming %ss", DEFAULT_LIFETIME)
    return DEFAULT_LIFETIME


def _token_error(resp: httpx.Response) -> ApiError:
    """Known refusal texts, and 400/401/403, are refused credentials (fatal, never hammered);
    429 and 5xx are transient (status table of the client base); anything else is fatal."""
    from services.http.base import status_error

    status = resp.status_code
    found = classify_body_text(resp.text)
    if found and found[0] == "auth":
        return AuthError("token request refused", system=SYSTEM, status_code=status, reason=found[1])
    if status in (400, 401, 403):
        return AuthError("token request refused", system=SYSTEM, status_code=status)
    if status == 429 or status >= 500:
        reason = found[1] if found else None
        return status_error(resp, what="token request", system=SYSTEM, reason=reason)
    return ValidationError("token request rejected", system=SYSTEM, status_code=status)
