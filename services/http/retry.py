"""The one retry policy every API call runs under.

``RetryPolicy.run(call, idempotent=...)`` retries only ``TransientError``:

* exponential back-off (``base_delay * 2**n``, capped at ``max_delay``) with jitter,
* a ``TransientError.retry_after`` from the server (429, 503) replaces the computed delay,
* bounded by ``max_attempts`` (``unsent_attempts`` for a request provably not carried out,
  below) *and* ``total_timeout`` (a wait that would end past the total budget is not started:
  the last error is raised at once, so the caller's queue can reschedule instead of a worker
  sleeping),
* a non-idempotent call (POST) is never retried unless the caller says ``idempotent=True``,
  or the failure proves the request was not carried out (``not_carried_out``):

| failure                                  | why nothing was carried out                       | POST resent |
|------------------------------------------|---------------------------------------------------|-------------|
| ``ConnectFailedError`` (refused, connect | the request never left this process              | yes         |
| timeout, no pooled connection, no token) |                                                   |             |
| ``ConnectorOfflineError`` (Advoware 503  | the gateway answered for the connector, which     | yes         |
| "nicht angemeldet")                      | never passed the request on                       |             |
| ``RateLimitedError`` with ``Retry-After``| the server refused it and said when to come back  | yes         |
| 429 without ``Retry-After``, 5xx, read   | the server may have acted on it                   | no          |
| timeout, connection lost after sending   |                                                   |             |

  The unsent kinds are repeated up to ``unsent_attempts`` times (a connector restart answers
  "nicht angemeldet" for several seconds; five in a row must not cost the record its sync),
  every other transient failure up to ``max_attempts``.
* nothing is repeated to a system whose circuit breaker opened meanwhile (``set_system_down``):
  a request in flight when the outage is confirmed gives up at its next failure, so only the
  probe reaches a system that is down.

Its numbers are settings (HTTP_RETRY_*, services/settings.py, where their defaults are
written): a client builds its policy from the settings it is given (`RetryPolicy.from_settings`).
The policy does not need httpx (steps that only retry do not pay its import).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Protocol, TypeVar

from services.errors import ConnectFailedError, ConnectorOfflineError, RateLimitedError, TransientError
from services.http.observe import current_observer, report_retry

log = logging.getLogger(__name__)

T = TypeVar("T")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


# Set by `single_attempt()`: every call of this task is sent once, whatever the policy says.
_SINGLE_ATTEMPT: ContextVar[bool] = ContextVar("single_attempt", default=False)


@contextmanager
def single_attempt() -> Iterator[None]:
    """Within this block (this task only), no call is repeated: a circuit breaker's probe is
    one request, and its answer - not a retry - decides whether the system is back."""
    token = _SINGLE_ATTEMPT.set(True)
    try:
        yield
    finally:
        _SINGLE_ATTEMPT.reset(token)


# Asked before each repeat: True when the failing system is known to be unavailable (its circuit
# breaker is open, services/sync/breaker.py), so the repeat is not sent. Installed per process by
# the composition root (services/runtime.py `open_runtime`); None: always repeat.
SystemDown = Callable[[str], Awaitable[bool]]
_SYSTEM_DOWN: SystemDown | None = None


def set_system_down(check: SystemDown | None) -> None:
    global _SYSTEM_DOWN
    _SYSTEM_DOWN = check


async def _system_down(system: str) -> bool:
    if _SYSTEM_DOWN is None:
        return False
    try:
        return await _SYSTEM_DOWN(system)
    except Exception as exc:  # the check must never turn a retry into another error
        log.warning("system-down check failed: %s", type(exc).__name__)
        return False


def not_carried_out(exc: TransientError) -> bool:
    """True if the failure proves the server did not act on the request (the table above)."""
    if isinstance(exc, ConnectFailedError | ConnectorOfflineError):
        return True
    return isinstance(exc, RateLimitedError) and exc.retry_after is not None


class RetrySettings(Protocol):
    """The settings a retry policy is built from (services/settings.py `Settings`)."""

    HTTP_RETRY_MAX_ATTEMPTS: int
    HTTP_RETRY_UNSENT_ATTEMPTS: int
    HTTP_RETRY_BASE_DELAY_SECONDS: float
    HTTP_RETRY_MAX_DELAY_SECONDS: float
    HTTP_RETRY_TOTAL_SECONDS: float


@dataclass(kw_only=True)
class RetryPolicy:
    max_attempts: int
    unsent_attempts: int
    base_delay: float
    max_delay: float
    total_timeout: float
    jitter: bool = True
    # Injectable for tests.
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    @classmethod
    def from_settings(
        cls,
        s: RetrySettings,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> RetryPolicy:
        return cls(
            max_attempts=s.HTTP_RETRY_MAX_ATTEMPTS,
            unsent_attempts=s.HTTP_RETRY_UNSENT_ATTEMPTS,
            base_delay=s.HTTP_RETRY_BASE_DELAY_SECONDS,
            max_delay=s.HTTP_RETRY_MAX_DELAY_SECONDS,
            total_timeout=s.HTTP_RETRY_TOTAL_SECONDS,
            sleep=sleep,
            clock=clock,
        )

    def backoff(self, retry_number: int) -> float:
        """Delay before retry number ``retry_number`` (1 = first retry), without Retry-After."""
        delay = min(self.max_delay, self.base_delay * (2 ** (retry_number - 1)))
        if self.jitter:
            # "Equal jitter": keeps at least half the back-off, spreads the rest.
            delay = delay / 2 + random.uniform(0, delay / 2)
        return delay

    def delay_for(self, exc: TransientError, retry_number: int) -> float:
        if exc.retry_after is not None:
            return max(0.0, float(exc.retry_after))
        return self.backoff(retry_number)

    async def run(self, call: Callable[[], Awaitable[T]], *, idempotent: bool) -> T:
        start = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await call()
            except TransientError as exc:
                unsent = not_carried_out(exc)
                if (not idempotent and not unsent) or _SINGLE_ATTEMPT.get():
                    raise
                bound = max(self.max_attempts, self.unsent_attempts) if unsent else self.max_attempts
                if attempt >= bound or await _system_down(exc.system):
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
                    bound - 1,
                    delay,
                    type(exc).__name__,
                    exc.status_code,
                )
                report_retry(current_observer(), exc.system)
                await self.sleep(delay)


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
