"""The httpx plumbing both API clients share: one pooled client per API client, one TLS
context per process, transport errors classified by whether the request left the process,
and the one JSON decoder for answers.

httpx is imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.errors import (
    ConnectFailedError,
    ConnectionLostError,
    ResponseTimeoutError,
    UnavailableError,
)

if TYPE_CHECKING:
    import httpx


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
        return ResponseTimeoutError(f"timeout ({name})", system=system, record_id=record_id)
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        # Reset or closed by the peer (ReadError, WriteError, CloseError, "server disconnected").
        return ConnectionLostError(f"connection lost ({name})", system=system, record_id=record_id)
    return UnavailableError(f"transport error ({name})", system=system, record_id=record_id)


_SSL_CONTEXT: Any = None


def _ssl_context(base_url: str) -> Any:
    """One default TLS context per process for every https client: building one loads the CA
    bundle (~25 ms), and each Motia event is a fresh process with two clients. A plain-http base
    URL (the sandbox, a proxy on the same host) never uses TLS: it gets a context that trusts no
    certificate at all (~1 ms), so a TLS connection it somehow made would fail, never go unchecked."""
    global _SSL_CONTEXT
    if not base_url.startswith("https://"):
        import ssl

        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, with no CA: trusts nothing
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
    base_url: str,
    timeout: float,
    transport: httpx.AsyncBaseTransport | None,
    max_connections: int,
) -> httpx.AsyncClient:
    """One AsyncClient per API-client instance, for requests to `base_url` only: connections are
    pooled and reused."""
    import httpx

    _note_missing_sniffio()
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        transport=transport,
        follow_redirects=False,
        verify=_ssl_context(base_url) if transport is None else True,
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
