"""HTTP for both API clients: the retry policy, the shared transport, the observation hook.

* ``services.http.retry``: ``RetryPolicy`` (back-off, ``Retry-After``, bounds).
* ``services.http.transport``: pooled ``httpx.AsyncClient``, transport errors, JSON decoding.
* ``services.http.observe``: the ``Observer`` hook every request is reported to (metrics).
* ``services.http.base``: ``ApiClient``, the one client base (send, map status, decode).

Importing this package does not import httpx (the base module does).
"""

from services.errors import ConnectFailedError
from services.http.observe import Observer, current_observer, set_observer
from services.http.retry import RetryPolicy, parse_retry_after
from services.http.transport import json_body, new_async_client, transport_error

__all__ = [
    "ConnectFailedError",
    "Observer",
    "RetryPolicy",
    "current_observer",
    "json_body",
    "new_async_client",
    "parse_retry_after",
    "set_observer",
    "transport_error",
]
