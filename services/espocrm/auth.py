"""EspoCRM authentication as ``httpx.Auth`` flows (shared/docs/espocrm-api.md §2.1).

* ``ApiKeyAuth``: ``X-Api-Key: <key>``.
* ``HmacAuth``: ``X-Hmac-Authorization = base64(apiKey + ":" + hex(HMAC-SHA256(secret,
  METHOD + " /" + path)))``, ``path`` being the part after ``/api/v1/`` without the query.

No I/O, so one flow serves sync and async clients. A 401 is final (never retried: failed
logins count towards EspoCRM's per-IP lockout). ``repr`` never shows a key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Generator
from urllib.parse import urlsplit

import httpx


def hmac_authorization(api_key: str, secret: str, method: str, path: str) -> str:
    """``X-Hmac-Authorization`` value; ``path`` is the part after ``/api/v1/``, no query string."""
    message = f"{method.upper()} /{path.lstrip('/')}"
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return base64.b64encode(f"{api_key}:{digest}".encode()).decode()


class ApiKeyAuth(httpx.Auth):
    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def __repr__(self) -> str:
        return "ApiKeyAuth()"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Api-Key"] = self._api_key
        yield request


class HmacAuth(httpx.Auth):
    def __init__(self, api_key: str, secret: str, *, base_url: str) -> None:
        self._api_key = api_key
        self._secret = secret
        # The signed path is relative to the API root, e.g. "/api/v1/" of the base URL.
        self._root = urlsplit(base_url).path.rstrip("/") + "/"

    def __repr__(self) -> str:
        return "HmacAuth()"

    def signed_path(self, request: httpx.Request) -> str:
        raw = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
        return raw[len(self._root) :] if raw.startswith(self._root) else raw.lstrip("/")

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Hmac-Authorization"] = hmac_authorization(
            self._api_key, self._secret, request.method, self.signed_path(request)
        )
        yield request
