"""One exception tree for every call the sync makes.

Modelled on httpx's tree: callers catch the *class* of failure, not a status code.
The split that matters to the sync is ``retryable``:

    SyncServiceError
    ├── ConfigurationError            settings missing/invalid (start-up)
    ├── InvalidDataError              a record's data cannot be written as it is (a person fixes it)
    ├── OperationError                an ops/CLI request that cannot be carried out (``status``: 4xx)
    ├── BackfillError                 a backfill run that cannot start or did not finish
    │   ├── BackfillBusyError         another backfill holds the lease
    │   └── BackfillAbortedError      stopped before its end; finished items are checkpointed
    └── ApiError                      a call to EspoCRM or Advoware failed
        ├── TransientError            retryable = True: try again later (``retry_after``: the server's wish)
        │   ├── UnavailableError      5xx, connector offline ("nicht angemeldet"), network, timeout
        │   │   ├── ConnectFailedError      the request never left this process (safe to resend a POST)
        │   │   ├── ConnectorOfflineError   Advoware's "nicht angemeldet": not passed on (safe to resend)
        │   │   ├── ConnectionLostError     the connection broke before an answer (reset, closed)
        │   │   ├── ResponseTimeoutError    sent, but no answer in time
        │   │   └── NotFoundUnconfirmedError a 404 that a second read or the listing did not confirm
        │   ├── RateLimitedError      429
        │   └── ContractError         the answer contradicts the assumed contract (paging, ids)
        └── FatalError                retryable = False: retrying will not help
            ├── NotFoundError         404 (Advoware: confirmed by a second read and the listing)
            ├── ConflictError         409 (EspoCRM duplicate)
            │   └── VersionConflictError   409 ``modified``: the record changed since it was read
            ├── ValidationError       400/422 with the server's reason
            └── AuthError             401/403 after the one allowed token renewal

Programming errors are deliberately *outside* the tree, so that no handler of the sync catches
them and parks a record for a bug: ``services.sync.states.IllegalTransition`` (a status change
the state machine forbids), and Python's own ``TypeError``/``KeyError``/``AssertionError``.
They propagate, fail the Motia event and are retried by its queue, loudly.

Messages carry the system, the HTTP status, the record id and the server's reason text,
never an API key, password, token or personal data (the server reason is cut short and
is the server's own validation text, e.g. "field: status, type: valid", or one of the
known fixed texts of services/advoware/contract.py). A server's free text that may name a
person (Advoware's ``Message`` of a 4xx answer) is the error's ``detail``: never part of the
message, so never in a log line or a traceback; it goes only where the project shows it to
the firm's staff on purpose, the record's ``syncErrorMessage`` and the notice about it
(services/sync/outcomes.py `failure_reason`).
"""

from __future__ import annotations

from typing import Any, TypedDict, Unpack


class SyncServiceError(Exception):
    """Base of everything this service raises on purpose."""


class ConfigurationError(SyncServiceError):
    """A setting is missing or invalid; the service cannot start."""


class InvalidDataError(SyncServiceError):
    """A record's content cannot be written to the other system as it is (the mapper refused it).

    Not retryable: a person must fix the data. ``services.beteiligte.common.MappingError``
    is the mapper's subclass; it names the field and the rule, never the value.
    """


class OperationError(SyncServiceError):
    """An operator's request (ops API, CLI) that cannot be carried out: unknown record, bad input.

    ``status`` is the HTTP status the ops API answers with (400 unless said otherwise).
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class BackfillError(SyncServiceError):
    """A backfill run could not start or did not reach its end."""


class BackfillBusyError(BackfillError):
    """Another backfill holds the backfill lease."""


class BackfillAbortedError(BackfillError):
    """The run stopped before its end; finished items are checkpointed, a rerun resumes."""


class ApiErrorDetails(TypedDict, total=False):
    """The optional details of every ``ApiError`` (keyword arguments of its constructor)."""

    status_code: int | None
    reason: str | None
    record_id: str | None
    detail: str | None


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
        detail: str | None = None,
    ) -> None:
        self.system = system
        self.status_code = status_code
        self.reason = _clip(reason)
        self.record_id = record_id
        self.detail = _clip(detail)  # kept out of the message: see the module docstring
        parts = [f"{system}: {message}"]
        if status_code is not None:
            parts.append(f"status={status_code}")
        if record_id:
            parts.append(f"id={record_id}")
        if self.reason:
            parts.append(f"reason={self.reason}")
        super().__init__(" ".join(parts))


class TransientError(ApiError):
    """Worth retrying: the other side is (temporarily) unable to answer.

    ``retry_after`` is the wait in seconds the server asked for (``Retry-After`` on a 429 or
    503), or None; ``services.http.RetryPolicy`` uses it instead of its own back-off.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        system: str,
        retry_after: float | None = None,
        **details: Unpack[ApiErrorDetails],
    ) -> None:
        super().__init__(message, system=system, **details)
        self.retry_after = retry_after


class UnavailableError(TransientError):
    """5xx, connector offline, connection error or timeout."""


class ConnectFailedError(UnavailableError):
    """The request never reached the server (connect error/timeout, pool timeout, no token).

    Safe to retry even for a POST: nothing was sent, so nothing can have been created.
    """


class ConnectorOfflineError(UnavailableError):
    """Advoware's connector answered "Die Kanzlei … ist nicht angemeldet": the request reached the
    gateway but was never passed on to the firm's server, so nothing was carried out (a POST
    may be resent) and every other request fails alike until the connector is back."""


class ConnectionLostError(UnavailableError):
    """The connection broke before an answer came (reset by the peer, closed mid-answer). The
    request may have been carried out: a POST is not resent."""


class ResponseTimeoutError(UnavailableError):
    """The request was sent but no answer came within the timeout. It may have been carried out."""


class NotFoundUnconfirmedError(UnavailableError):
    """A record read answered 404, but a second read or the listing endpoint did not confirm it.

    A misrouted or stale connector URL answers 404 for everything; treating that as "deleted"
    would mark records ``deleted_in_advoware`` in bulk. Retry later instead.
    """


class RateLimitedError(TransientError):
    """429; ``retry_after`` is the server's requested wait in seconds, if it sent one."""


class ContractError(TransientError):
    """The server answered something the assumed contract rules out (a listing that ignores
    ``skip``, a PUT answer for another ``betNr``, a create answer without an id).

    Retryable (a proxy glitch passes), but if it persists the adapter's assumptions
    (services/advoware/client.py, "the assumed contract") need a correction: alert on it.
    """


class FatalError(ApiError):
    """Not worth retrying without a change somewhere (data, configuration, permissions)."""

    retryable = False


class NotFoundError(FatalError):
    """The record does not exist (404)."""


class ConflictError(FatalError):
    """409: EspoCRM duplicate check or version conflict."""


class VersionConflictError(ConflictError):
    """409 ``modified``: the record changed since the ``X-Version-Number`` sent was read.

    ``current_values`` are the record's stored values and ``version_number`` its current version
    as EspoCRM answered them (espocrm-api.md §2.3): re-read, decide again, send that version.
    """

    def __init__(
        self,
        message: str,
        *,
        system: str,
        record_id: str | None,
        current_values: dict[str, Any],
        version_number: int | None,
    ) -> None:
        super().__init__(message, system=system, status_code=409, reason="modified", record_id=record_id)
        self.current_values = current_values
        self.version_number = version_number


class ValidationError(FatalError):
    """400/422: the server refused the data; ``reason`` holds its explanation."""


class AuthError(FatalError):
    """401/403 that a token renewal did not fix, or refused credentials."""


def _clip(text: str | None, limit: int = 300) -> str | None:
    if text is None:
        return None
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
