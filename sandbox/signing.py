"""Signatures and byte formats re-implemented for the simulators (independent of services/)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


def php_json(value: Any) -> bytes:
    """Bytes as PHP json_encode writes them: compact, `/` escaped, non-ASCII as \\uXXXX."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode("ascii")


def webhook_signature(webhook_id: str, secret: str, body: bytes) -> str:
    """EspoCRM `Signature`: base64(id + ':' + hex HMAC-SHA256(secret, body))."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return base64.b64encode(f"{webhook_id}:{digest}".encode()).decode()


def webhook_x_signature(webhook_id: str, secret: str, body: bytes) -> str:
    """EspoCRM legacy `X-Signature`: base64(id + ':' + raw 32-byte HMAC-SHA256(secret, body))."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(webhook_id.encode() + b":" + digest).decode()


def espo_hmac_header(api_key: str, secret: str, method: str, path: str) -> str:
    """`X-Hmac-Authorization` for METHOD + ' /' + path (path after /api/v1/, no query string)."""
    message = f"{method.upper()} /{path.lstrip('/')}"
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return base64.b64encode(f"{api_key}:{digest}".encode()).decode()


def advoware_signature(api_key_b64: str, product: int | str, app_id: str, nonce: str, ts: str) -> str:
    """Token request HMAC512Signature: base64(HMAC-SHA512(b64decode(key), 'Product:AppID:Nonce:TS'))."""
    message = f"{product}:{app_id}:{nonce}:{ts}".encode()
    key = base64.b64decode(api_key_b64)
    return base64.b64encode(hmac.new(key, message, hashlib.sha512).digest()).decode()
