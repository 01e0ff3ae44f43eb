"""Whose fault is a failed sync: the system's (it is unavailable, every record fails alike) or
the record's (its data, or something about this one record)? Pure: an error in, a `Fault` out.

| error (services/errors.py)                  | what it says                              | fault         |
|---------------------------------------------|-------------------------------------------|---------------|
| `ConnectFailedError`                        | connection refused, connect timeout, no   | `SYSTEM`      |
|                                             | pooled connection, no Advoware concurrency|               |
|                                             | slot while none turned over (every one    |               |
|                                             | stuck in a call), no token                |               |
| `ConnectionLostError`                       | connection reset / closed before answering| `SYSTEM`      |
| `ResponseTimeoutError`                      | sent, no answer in time (a hung server)   | `SYSTEM`      |
| `ConnectorOfflineError`                     | Advoware's "nicht angemeldet"             | `SYSTEM`      |
| `UnavailableError`, status 502/503/504      | gateway error, unavailable, gateway       | `SYSTEM`      |
|                                             | timeout                                   |               |
| `AuthError`                                 | 401/403 after renewal, refused credentials| `CREDENTIALS` |
| `NotFoundUnconfirmedError`                  | a 404 the listing did not confirm         | `RECORD`      |
| `UnavailableError`, other status (500, ...)  | the server failed on this request         | `RECORD`      |
| `UnavailableError`, no status               | our side (the token lease), or an answer  | `RECORD`      |
|                                             | that is not JSON                          |               |
| `RateLimitedError` (429)                    | too many requests: slow down, not down    | `RECORD`      |
| `ContractError`                             | an answer the contract rules out          | `RECORD`      |
| `ValidationError`, `ConflictError`, other   | the server refused this record's data     | `DATA`        |
| `FatalError`                                |                                           |               |
| `InvalidDataError` (the mapper refused)     | the data cannot be written as it is       | `DATA`        |

What each fault leads to (services/sync/outcomes.py, services/sync/breaker.py):

- `SYSTEM` / `CREDENTIALS`: one confirming probe (a cheap read of that system, which must fail
  too). It fails -> the system's breaker opens at once (kind `unavailable` / `auth`), the
  record *waits* for it: no attempt counted, released the moment a probe answers. It answers
  -> the failure was this record's after all: handled as `RECORD`.
- `RECORD`: `failed`, one attempt counted, retried with back-off (services/sync/backoff.py).
- `DATA`: `permanently_failed` at once; a person fixes the data.
"""

from __future__ import annotations

from enum import StrEnum

from services.errors import (
    AuthError,
    ConnectFailedError,
    ConnectionLostError,
    ConnectorOfflineError,
    FatalError,
    NotFoundUnconfirmedError,
    ResponseTimeoutError,
    TransientError,
    UnavailableError,
)

# Statuses a proxy or the server itself answers when the whole service is not there.
UNAVAILABLE_STATUSES = frozenset({502, 503, 504})


class Fault(StrEnum):
    SYSTEM = "system"  # the system looks unavailable: confirm with a probe
    CREDENTIALS = "credentials"  # the system refuses our credentials: confirm with a probe
    RECORD = "record"  # this record's transient failure: back-off
    DATA = "data"  # this record's data is refused: a person fixes it


def classify(exc: BaseException) -> Fault:
    """The fault an error of a sync points to (the table above)."""
    if isinstance(exc, AuthError):
        return Fault.CREDENTIALS
    if isinstance(exc, FatalError) or not isinstance(exc, TransientError):
        return Fault.DATA  # FatalError or InvalidDataError: the recorded errors that are not transient
    if isinstance(exc, NotFoundUnconfirmedError):
        return Fault.RECORD
    if isinstance(
        exc, ConnectFailedError | ConnectionLostError | ResponseTimeoutError | ConnectorOfflineError
    ):
        return Fault.SYSTEM
    if isinstance(exc, UnavailableError) and exc.status_code in UNAVAILABLE_STATUSES:
        return Fault.SYSTEM
    return Fault.RECORD


def is_system_fault(exc: BaseException) -> bool:
    """The system may be unavailable (or refuse us): worth a confirming probe."""
    return classify(exc) in (Fault.SYSTEM, Fault.CREDENTIALS)
