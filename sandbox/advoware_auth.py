"""The Advoware simulator's authentication: the token endpoint (HMAC-SHA512 signature, nonce,
clock skew, credentials) and the Bearer check, plus the error answer the whole simulator uses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request

from sandbox import config as cfg

UNAUTHORIZED = "Authorization has been denied for this request."
TOKEN_REQUEST_FIELDS = [
    "AppID",
    "Kanzlei",
    "Database",
    "User",
    "Password",
    "Role",
    "Product",
    "Nonce",
    "RequestTimeStamp",
    "HMAC512Signature",
]


class AdvoError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def parse_timestamp(text: str) -> datetime:
    """ISO-8601 UTC with 0-7 fractional digits, `Z` or `+0000`/`+00:00`."""
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,7}))?(Z|[+-]\d{2}:?\d{2})?", text)
    if not m:
        raise ValueError(text)
    base = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    base = base.replace(microsecond=int(frac))
    zone = m.group(3)
    if zone in (None, "Z"):
        return base.replace(tzinfo=UTC)
    sign = 1 if zone[0] == "+" else -1
    digits = zone[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return (base - sign * offset).replace(tzinfo=UTC)


class TokenAuth:
    def __init__(self, sandbox_config: cfg.SandboxConfig) -> None:
        self.config = sandbox_config
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (user, expires epoch)
        self.nonces: set[str] = set()
        self.token_ttl = sandbox_config.token_ttl
        self.users = {cfg.ADVO_USER: cfg.ADVO_PASSWORD, cfg.ADVO_HUMAN_USER: cfg.ADVO_HUMAN_PASSWORD}

    def clear(self) -> None:
        self.tokens.clear()
        self.nonces.clear()

    def issue_token(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise AdvoError(400, "Ungültige Anfrage.")
        missing = [k for k in TOKEN_REQUEST_FIELDS if body.get(k) in (None, "")]
        if missing:
            raise AdvoError(400, f"Das Feld '{missing[0]}' fehlt.")
        nonce = str(body["Nonce"])
        self._check_signature(body, nonce)
        user = self._check_account(body)
        self.nonces.add(nonce)
        token = secrets.token_urlsafe(48)
        expires = time.time() + self.token_ttl
        self.tokens[token] = (user, expires)
        expires_dt = datetime.fromtimestamp(expires, UTC)
        return {
            "token_type": "bearer",
            "expires_in": self.token_ttl,
            "expiration_utc": expires_dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z",
            "access_token": token,
            "refresh_token": secrets.token_urlsafe(32),
        }

    def _check_signature(self, body: dict[str, Any], nonce: str) -> None:
        product, app_id, stamp = body["Product"], str(body["AppID"]), str(body["RequestTimeStamp"])
        message = f"{product}:{app_id}:{nonce}:{stamp}".encode()
        expected = base64.b64encode(
            hmac.new(base64.b64decode(cfg.ADVO_API_KEY), message, hashlib.sha512).digest()
        ).decode()
        if app_id != cfg.ADVO_APP_ID or not hmac.compare_digest(expected, str(body["HMAC512Signature"])):
            raise AdvoError(401, "Signatur ungültig")
        try:
            when = parse_timestamp(stamp)
        except ValueError as exc:
            raise AdvoError(401, "Signatur ungültig: RequestTimeStamp ist kein gültiger Zeitstempel") from exc
        if abs((datetime.now(UTC) - when).total_seconds()) > self.config.token_clock_skew:
            raise AdvoError(401, "Signatur ungültig: RequestTimeStamp außerhalb des erlaubten Zeitfensters")
        if nonce in self.nonces:
            raise AdvoError(401, "Signatur ungültig: Nonce wurde bereits verwendet")

    def _check_account(self, body: dict[str, Any]) -> str:
        product = body["Product"]
        if str(product) != str(cfg.ADVO_PRODUCT):
            raise AdvoError(401, f"Das Produkt {product} ist für diese App nicht freigeschaltet")
        if str(body["Kanzlei"]) != cfg.ADVO_KANZLEI:
            raise AdvoError(401, f"Die Kanzlei {body['Kanzlei']} ist nicht registriert")
        if str(body["Database"]) != cfg.ADVO_DATABASE:
            raise AdvoError(401, f"Die Datenbank {body['Database']} ist nicht registriert")
        user = str(body["User"])
        if self.users.get(user) != str(body["Password"]):
            raise AdvoError(401, "Falscher Name oder falsches Kennwort")
        return user

    def check_bearer(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        entry = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if entry is None:
            raise AdvoError(401, UNAUTHORIZED)
        user, expires = entry
        if time.time() >= expires:
            self.tokens.pop(token.strip(), None)
            raise AdvoError(401, UNAUTHORIZED)
        return user

    def expire_tokens(self) -> int:
        count = len(self.tokens)
        self.tokens.clear()
        return count
