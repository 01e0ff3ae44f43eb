"""One exception tree for every call the sync makes.

Modelled on httpx's tree: callers catch the *class* of failure, not a status code.
The split that matters to the sync is ``retryable``:

    SyncServiceError
    ├── ConfigurationError            settings missing/invalid (start-up)
    └── ApiError                      a call to EspoCRM or Advoware failed
        ├── TransientError            retryable = True: try again later
        │   ├── UnavailableError      5xx, connector offline ("nicht angemeldet"), network, timeout
        │   └── RateLimitedError      429 (carries retry_after seconds)
        └── FatalError                retryable = False: retrying will not help
            ├── NotFoundError         404
            ├── ConflictError         409 (EspoCRM duplicate / version conflict)
            ├── ValidationError       400/422 with the server's reason
            └── AuthError             401/403 after the one allowed token renewal

Messages carry the system, the HTTP status, the record id and the server's reason text,
never an API key, password, token or personal data (the server reason is cut short and
is the server's own validation text, e.g. "field: status, type: valid").
"""

from __future__ import annotations


class SyncServiceError(Exception):
    """Base of everything this service raises on purpose."""


class ConfigurationError(SyncServiceError):
    """A setting is missing or invalid; the service cannot start."""


class ApiError(SyncServiceError):
    """A call to EspoCRM or Advoware failed."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        system: str,
        status_code: int | None = None,
        reason: str | None = None,
        record_id: str | None = None,
    ) -> None:
        self.system = system
        self.status_code = status_code
        self.reason = _clip(reason)
        self.record_id = record_id
        parts = [f"{system}: {message}"]
        if status_code is not None:
            parts.append(f"status={status_code}")
        if record_id:
            parts.append(f"id={record_id}")
        if self.reason:
            parts.append(f"reason={self.reason}")
        super().__init__(" ".join(parts))


class TransientError(ApiError):
    """Worth retrying: the other side is (temporarily) unable to answer."""

    retryable = True


class UnavailableError(TransientError):
    """5xx, connector offline, connection error or timeout."""


class RateLimitedError(TransientError):
    """429; ``retry_after`` is the server's requested wait in seconds, if it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class FatalError(ApiError):
    """Not worth retrying without a change somewhere (data, configuration, permissions)."""

    retryable = False


class NotFoundError(FatalError):
    """The record does not exist (404)."""


class ConflictError(FatalError):
    """409: EspoCRM duplicate check or version conflict."""


class ValidationError(FatalError):
    """400/422: the server refused the data; ``reason`` holds its explanation."""


class AuthError(FatalError):
    """401/403 that a token renewal did not fix, or refused credentials."""


def _clip(text: str | None, limit: int = 300) -> str | None:
    if text is None:
        return None
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
