"""Every assumption about Advoware's API, in one place (shared/docs/advoware-api.md Part 2).

Paths, query parameter names, field names, the page size and the error texts are the
project's assumptions until the firm's Swagger is known: correct them here, once. The client
(services/advoware/client.py), the token (token.py) and the paging guard (paging.py) read
them from here; nothing else in the service knows Advoware's wire format.
"""

from __future__ import annotations

# --- endpoints (§2.1) -------------------------------------------------------------------
BETEILIGTE_PATH = "api/v1/advonet/Beteiligte"  # on the API base (connector or relay)
LOGIN_PATH = "api/v1/Token"  # on the security gateway
# The Kürzel licensed for a product (seen on the relay for the vendor's own product 1; a server
# may not offer it): the day-one licence check of `check-advoware`.
LICENSE_PATH = "api/v1/license/KuerzelForProduct/{product}"

# --- listing (§2.1, §2.4) ----------------------------------------------------------------
PARAM_SKIP = "skip"
PARAM_TAKE = "take"
PARAM_CHANGED_SINCE = "geaendertAb"  # local ISO datetime, inclusiveness not assumed
MAX_TAKE = 100  # the documented maximum page size; a server may cap lower (read on)

# --- fields (§2.2) ------------------------------------------------------------------------
FIELD_KEY = "betNr"  # server-assigned int key
FIELD_CHANGED_AT = "geaendertAm"  # change stamp, naive, in ADVOWARE_TIMEZONE
FIELD_ROW_ID = "rowId"  # row version, new on every update (if the server sends one)
READ_ONLY_FIELDS: tuple[str, ...] = (
    FIELD_KEY,
    FIELD_CHANGED_AT,
    "angelegtAm",
)  # set by the server, never sent
# Every field name the service reads, as the service spells it. A server may spell them in
# another case (PascalCase in every public Advoware payload): fields.py maps them back.
KNOWN_FIELDS: tuple[str, ...] = (
    FIELD_KEY,
    "rechtsform",
    "anrede",
    "titel",
    "vorname",
    "name",
    "zusatz",
    "geburtsdatum",
    "handelsRegisterNummer",
    "registergericht",
    "kommunikation",
    FIELD_CHANGED_AT,
    "angelegtAm",
    FIELD_ROW_ID,
)
KOMMUNIKATION_FIELDS: tuple[str, ...] = ("kommKz", "tlf", "bemerkung", "online")

# --- error texts (§1.5, §2.3), matched as substrings of the body ---------------------------
# Configuration/auth texts are fatal; never echo the body itself (it may name the user).
AUTH_TEXTS: dict[str, str] = {
    "ist nicht registriert": "kanzlei/database not registered",
    "freigeschaltet": "product or user not activated",
    "Falscher Name oder falsches Kennwort": "wrong user or password",
    "Benutzer / Kennwort ung": "wrong user or password",
}
OFFLINE_TEXT = "ist nicht angemeldet"
MESSAGE_FIELDS = ("Message", "message")  # the error body's text (400/409/422)


def classify_body_text(text: str) -> tuple[str, str] | None:
    """``("auth", reason)``/``("offline", reason)`` when the body carries a known Advoware text."""
    for needle, reason in AUTH_TEXTS.items():
        if needle in text:
            return "auth", reason
    if OFFLINE_TEXT in text:
        return "offline", "connector offline (nicht angemeldet)"
    return None


def betnr_of(item: object) -> int | None:
    """The ``betNr`` of an answer object as an int, or None when it has none (or not a number)."""
    if not isinstance(item, dict):
        return None
    value = item.get(FIELD_KEY)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None
