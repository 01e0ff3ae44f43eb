"""The one retry policy, and the HTTP plumbing both API clients share.

``RetryPolicy.run(call, idempotent=...)`` retries only ``TransientError``:

* exponential back-off (``base_delay * 2**n``, capped at ``max_delay``) with jitter,
* a ``RateLimitedError.retry_after`` from the server replaces the computed delay,
* bounded by ``max_attempts`` *and* ``total_timeout`` (a wait that would end past the
  total budget is not started: the last error is raised at once, so the caller's queue
  can reschedule instead of a worker sleeping),
* a non-idempotent call (POST) is never retried unless the caller says ``idempotent=True``,
  with one exception: ``ConnectFailedError``. It is raised when the TCP/TLS connection
  could not be established (or no pooled connection became free), so the request never
  left this process and the server cannot have acted on it; sending it again cannot
  create a duplicate. A read timeout or a dropped connection *after* sending is different:
  the server may have processed the request, so those are only retried when idempotent.

httpx is imported lazily: the retry policy itself does not need it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar

from services.errors import TransientError, UnavailableError

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

T = TypeVar("T")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class ConnectFailedError(UnavailableError):
    """The request never reached the server (connect error/timeout, pool timeout).

    Safe to retry even for a POST: nothing was sent, so nothing can have been created.
    """


@dataclass
class RetryPolicy:
    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    total_timeout: float = 60.0
    jitter: bool = True
    # Injectable for tests.
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def backoff(self, retry_number: int) -> float:
        """Delay before retry number ``retry_number`` (1 = first retry), without Retry-After."""
        delay = min(self.max_delay, self.base_delay * (2 ** (retry_number - 1)))
        if self.jitter:
            # "Equal jitter": keeps at least half the back-off, spreads the rest.
            delay = delay / 2 + random.uniform(0, delay / 2)
        return delay

    def delay_for(self, exc: TransientError, retry_number: int) -> float:
        # RateLimitedError carries retry_after; a 503 with Retry-After gets the attribute too.
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return max(0.0, float(retry_after))
        return self.backoff(retry_number)

    async def run(self, call: Callable[[], Awaitable[T]], *, idempotent: bool) -> T:
        start = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await call()
            except TransientError as exc:
                if not idempotent and not isinstance(exc, ConnectFailedError):
                    raise
                if attempt >= self.max_attempts:
                    log.warning(
                        "giving up after %d attempts: %s status=%s",
                        attempt,
                        type(exc).__name__,
                        exc.status_code,
                    )
                    raise
                delay = self.delay_for(exc, attempt)
                elapsed = self.clock() - start
                if elapsed + delay > self.total_timeout:
                    log.warning(
                        "giving up: retry in %.2fs would exceed the %.0fs budget (%s status=%s)",
                        delay,
                        self.total_timeout,
                        type(exc).__name__,
                        exc.status_code,
                    )
                    raise
                log.info(
                    "retry %d/%d in %.2fs after %s status=%s",
                    attempt,
                    self.max_attempts - 1,
                    delay,
                    type(exc).__name__,
                    exc.status_code,
                )
                await self.sleep(delay)


NO_RETRY = RetryPolicy(max_attempts=1)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:  # pragma: no cover - older Pythons
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def transport_error(exc: Exception, *, system: str, record_id: str | None = None) -> UnavailableError:
    """Map an httpx transport exception to the error tree (no URL, no headers in the text).

    Callers raise the result ``from None``: only the exception class name is kept, so no text
    from the transport layer can carry a URL, credential or record data into logs.
    """
    import httpx

    name = type(exc).__name__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return ConnectFailedError(f"connection failed ({name})", system=system, record_id=record_id)
    if isinstance(exc, httpx.TimeoutException):
        return UnavailableError(f"timeout ({name})", system=system, record_id=record_id)
    return UnavailableError(f"transport error ({name})", system=system, record_id=record_id)


_SSL_CONTEXT: Any = None


def _ssl_context() -> Any:
    """One default TLS context per process for every client: building one loads the CA bundle
    (~25 ms), and each Motia event is a fresh process with two clients."""
    global _SSL_CONTEXT
    if _SSL_CONTEXT is None:
        import httpx

        _SSL_CONTEXT = httpx.create_ssl_context()
    return _SSL_CONTEXT


def _note_missing_sniffio() -> None:
    """httpcore runs `import sniffio` inside every connection-pool operation (~25 per synced
    record). Without sniffio installed each failed import searches sys.path again; recording
    the absence once makes the next attempts fail at the sys.modules lookup (same result)."""
    import sys

    if "sniffio" in sys.modules:
        return
    try:
        import sniffio  # noqa: F401
    except ImportError:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


def new_async_client(
    *,
    timeout: float,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 10,
) -> httpx.AsyncClient:
    """One AsyncClient per API-client instance: connections are pooled and reused."""
    import httpx

    _note_missing_sniffio()
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        transport=transport,
        follow_redirects=False,
        verify=_ssl_context() if transport is None else True,
    )


def json_body(resp: httpx.Response, *, what: str, system: str, record_id: str | None = None) -> Any:
    """The decoded JSON body of a successful response (None when empty). A body that is not
    JSON is a broken proxy or a server error page: transient, worth a retry."""
    if not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        raise UnavailableError(
            f"{what}: response is not JSON", system=system, status_code=resp.status_code, record_id=record_id
        ) from None
