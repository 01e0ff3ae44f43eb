"""The one observation hook of the API clients: every completed request and every transport
error is reported once, for metrics (API calls per system and status class, latency).

A request retried by the ``RetryPolicy`` is reported once per attempt (each attempt is a call the
other side saw, or tried to); a 401 renewed by the Advoware bearer flow is one report (the final
answer). Token requests are reported with ``method="POST"`` and their own system name
(``advoware-token``).

Install one process-wide observer at start-up (``set_observer``), or pass ``observer=`` to a
client; the default does nothing. An observer must be cheap and must not raise: it runs on the
request path, and an exception it raises is logged and dropped.
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)

TRANSPORT_ERROR = "error"  # status_class of a request that got no HTTP answer


class Observer(Protocol):
    def observe(self, system: str, method: str, status_class: str, seconds: float) -> None:
        """``status_class``: ``"2xx"`` … ``"5xx"``, or ``"error"`` when no answer arrived."""


class NoObserver:
    def observe(self, system: str, method: str, status_class: str, seconds: float) -> None:
        return None


_current: Observer = NoObserver()


def set_observer(observer: Observer | None) -> None:
    """Install the process-wide observer (None: back to the no-op)."""
    global _current
    _current = observer if observer is not None else NoObserver()


def current_observer() -> Observer:
    return _current


def status_class(status_code: int | None) -> str:
    return TRANSPORT_ERROR if status_code is None else f"{status_code // 100}xx"


def report_retry(observer: Observer, system: str) -> None:
    """A transient failure is about to be retried; observers with a `retry(system)` method count it."""
    retry = getattr(observer, "retry", None)
    if retry is None:
        return
    try:
        retry(system)
    except Exception as exc:
        log.warning("API call observer failed: %s", type(exc).__name__)


def report(observer: Observer, system: str, method: str, status_code: int | None, seconds: float) -> None:
    """Call the observer; a failing observer never fails the request."""
    try:
        observer.observe(system, method, status_class(status_code), seconds)
    except Exception as exc:
        log.warning("API call observer failed: %s", type(exc).__name__)
