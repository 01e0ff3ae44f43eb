"""Admin token check for the ops endpoints (constant-time)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any


def is_authorised(headers: Mapping[str, Any], admin_token: str) -> bool:
    raw = ""
    for name, value in headers.items():
        if str(name).lower() == "authorization":
            raw = str(value)
            break
    scheme, _, token = raw.partition(" ")
    if scheme.lower() != "bearer" or not token or not admin_token:
        # Still compare, so a missing header costs the same as a wrong one.
        hmac.compare_digest(b"x" * 32, b"y" * 32)
        return False
    return hmac.compare_digest(token.strip().encode(), admin_token.encode())


UNAUTHORISED: dict[str, Any] = {
    "status": 401,
    "body": {"error": "missing or invalid admin token (Authorization: Bearer <SYNC_ADMIN_TOKEN>)"},
    "headers": {"WWW-Authenticate": "Bearer"},
}
