"""EspoCRM outgoing-webhook signature verification (shared/docs/espocrm-api.md §1.2).

    Signature   = base64( webhookId + ":" + lowercase_hex( HMAC-SHA256(secretKey, rawBody) ) )
    X-Signature = base64( webhookId + ":" + raw_32_bytes( HMAC-SHA256(secretKey, rawBody) ) )   (legacy)

Verified over the raw body bytes, in constant time, against any of several active secrets
(rotation). ``Signature`` wins; the legacy ``X-Signature`` is used only when ``Signature``
is absent. Only stdlib imports: the webhook step must start fast.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Protocol

from services.errors import SyncServiceError


class _SecretLike(Protocol):
    def get_secret_value(self) -> str: ...


class WebhookSignatureError(SyncServiceError):
    """The webhook request is not authentic; ``reason`` says why (never contains a secret)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"webhook signature rejected: {reason}")


def _digest(secret: str, raw: bytes) -> bytes:
    return hmac.new(secret.encode(), raw, hashlib.sha256).digest()


def expected_signature(webhook_id: str, secret: str, raw: bytes) -> str:
    """The ``Signature`` header EspoCRM sends for this body."""
    return base64.b64encode(f"{webhook_id}:{_digest(secret, raw).hex()}".encode()).decode()


def expected_legacy_signature(webhook_id: str, secret: str, raw: bytes) -> str:
    """The legacy ``X-Signature`` header (raw 32-byte digest) EspoCRM sends for this body."""
    return base64.b64encode(webhook_id.encode() + b":" + _digest(secret, raw)).decode()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)  # case-insensitive mappings (httpx/starlette) answer directly
    if value is not None:
        return value
    for key, val in headers.items():
        if key.lower() == name:
            return val
    return None


# Strict base64: the port gate (scripts/vmh-webhook-check.mjs) uses the same pattern, so both
# refuse the same headers (Python's own strict mode still takes surplus "=" after a full group).
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _b64(value: str) -> bytes:
    text = value.strip(" \t")  # HTTP's optional whitespace around a header value, nothing else
    if not _BASE64.fullmatch(text):
        raise WebhookSignatureError("malformed signature")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookSignatureError("malformed signature") from None


def _secret_for(secrets: Mapping[str, str | _SecretLike], webhook_id: str) -> str:
    secret = secrets.get(webhook_id)
    if secret is None:
        raise WebhookSignatureError("unknown webhook id")
    return secret if isinstance(secret, str) else secret.get_secret_value()


def verify_signature(raw: bytes, headers: Mapping[str, str], secrets: Mapping[str, str | _SecretLike]) -> str:
    """Return the webhook id whose secret signed ``raw``, or raise ``WebhookSignatureError``."""
    signature = _header(headers, "signature")
    if signature is not None:
        webhook_id, hex_digest = _id_and_digest(signature, 64)
        expected = _digest(_secret_for(secrets, webhook_id), raw).hex().encode()
        if not hmac.compare_digest(expected, hex_digest.lower()):
            raise WebhookSignatureError("signature mismatch")
        return webhook_id

    legacy = _header(headers, "x-signature")
    if legacy is None:
        raise WebhookSignatureError("missing signature")
    webhook_id, raw_digest = _id_and_digest(legacy, 32)
    if not hmac.compare_digest(_digest(_secret_for(secrets, webhook_id), raw), raw_digest):
        raise WebhookSignatureError("signature mismatch")
    return webhook_id


def _id_and_digest(header: str, digest_length: int) -> tuple[str, bytes]:
    """Split base64(id ':' digest). The id never contains ':'; the digest may, so split at the
    first one."""
    webhook_id_b, sep, digest = _b64(header).partition(b":")
    if not sep or not webhook_id_b or len(digest) != digest_length:
        raise WebhookSignatureError("malformed signature")
    try:
        return webhook_id_b.decode("ascii"), digest
    except UnicodeDecodeError:
        raise WebhookSignatureError("malformed signature") from None
