"""What an operator's write action answers when a system fails under it: an `OperationError`
with the reason and what to do, never an unhandled error (the ops API would answer 500, the
CLI print a traceback).

| failure under the action                          | status | the operator reads                        |
|---------------------------------------------------|--------|-------------------------------------------|
| the request never left (connect failed, offline)  | 503    | nothing written; try again later          |
| sent, no answer (timeout, connection lost, 5xx)   | 503    | may have been written; safe to run again  |
| 429 / an answer against the contract              | 503    | try again later                           |
| EspoCRM 409 (saved by someone just now)           | 409    | try again                                 |
| 404 (the record or party is gone)                 | 404    | the system's reason                       |
| 400 / 422 (the system refused the data)           | 422    | the system's reason                       |
| 401 / 403                                         | 502    | the system refuses the service's login    |
| Redis unreachable                                 | 503    | nothing decided; try again later          |

Each action is safe to run again after any of these (its module doc's table says why); the
messages carry the system, status and record id (ApiError's message), never personal data.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from services.errors import (
    ApiError,
    ConflictError,
    ConnectFailedError,
    ConnectorOfflineError,
    NotFoundError,
    OperationError,
    TransientError,
    ValidationError,
)

UNAVAILABLE = 503


def for_operator(exc: ApiError, doing: str) -> OperationError:
    """The table above, for an API error of `doing` (e.g. "exclude of record X")."""
    if isinstance(exc, ConnectFailedError | ConnectorOfflineError):
        return OperationError(
            f"{doing}: {exc.system} is unavailable ({exc}); nothing written, try again later", UNAVAILABLE
        )
    if isinstance(exc, TransientError):
        return OperationError(
            f"{doing}: {exc.system} did not answer ({exc}); the write may have been carried out,"
            " it is safe to run the action again",
            UNAVAILABLE,
        )
    if isinstance(exc, ConflictError):
        return OperationError(f"{doing}: saved in {exc.system} by someone just now ({exc}); try again", 409)
    if isinstance(exc, NotFoundError):
        return OperationError(f"{doing}: not found ({exc})", 404)
    if isinstance(exc, ValidationError):
        return OperationError(f"{doing}: {exc.system} refused it ({exc})", 422)
    return OperationError(f"{doing}: {exc.system} refuses the service ({exc})", 502)


@contextmanager
def reported(doing: str) -> Iterator[None]:
    """Raise an API or Redis failure inside the block as the OperationError of the table."""
    from redis.exceptions import RedisError

    try:
        yield
    except ApiError as exc:
        raise for_operator(exc, doing) from exc
    except (RedisError, OSError) as exc:
        raise OperationError(
            f"{doing}: Redis is unavailable ({type(exc).__name__}); try again later", UNAVAILABLE
        ) from exc
