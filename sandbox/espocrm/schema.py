"""The CBeteiligte entity as the simulator knows it: field kinds, output order, users, errors, ids.

Faithful to shared/docs/espocrm-api.md. Everything else in the package reads its field lists here.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.advoware.kommkz import ESPO_PHONE_TYPES
from services.beteiligte.normalize import ESPO_RECHTSFORMEN, ESPO_SALUTATIONS

ENTITY = "CBeteiligte"

ENUMS: dict[str, list[str | None]] = {
    "salutationName": list(ESPO_SALUTATIONS),
    "beteiligterTyp": ["Person", "Firma"],
    "rechtsform": list(ESPO_RECHTSFORMEN),
    "syncStatus": [
        "pending_sync",
        "syncing",
        "clean",
        "dirty",
        "failed",
        "conflict",
        "deleted_in_advoware",
        "permanently_failed",
        "excluded",
    ],
}
PHONE_TYPES = list(ESPO_PHONE_TYPES)
DATETIME_FIELDS = {"advowareLastSync", "advowareDeletedAt"}
DATE_FIELDS = {"geburtsdatum"}
INT_FIELDS = {"betnr", "syncRetryCount"}
STRING_FIELDS = {
    "name",
    "firstName",
    "lastName",
    "titel",
    "handelsregisterNummer",
    "registergericht",
    "syncErrorMessage",
    "emailAddress",
    "phoneNumber",
}
SYSTEM_DROPPED = {
    "id",
    "deleted",
    "createdAt",
    "createdById",
    "createdByName",
    "modifiedAt",
    "modifiedById",
    "modifiedByName",
    "versionNumber",
}
# Output order of a record.
ATTRIBUTES = [
    "id",
    "name",
    "deleted",
    "salutationName",
    "firstName",
    "lastName",
    "beteiligterTyp",
    "titel",
    "geburtsdatum",
    "rechtsform",
    "handelsregisterNummer",
    "registergericht",
    "emailAddress",
    "phoneNumber",
    "betnr",
    "syncStatus",
    "advowareLastSync",
    "advowareDeletedAt",
    "syncErrorMessage",
    "syncRetryCount",
    "createdAt",
    "modifiedAt",
    "createdById",
    "createdByName",
    "modifiedById",
    "modifiedByName",
]
DATA_ATTRS = ("emailAddressData", "phoneNumberData")
WRITABLE = (set(ENUMS) | DATETIME_FIELDS | DATE_FIELDS | INT_FIELDS | STRING_FIELDS) - SYSTEM_DROPPED
NO_UPDATE_EVENT = {
    "modifiedAt",
    "modifiedById",
    "modifiedByName",
    "versionNumber",
    "isFollowed",
    "isStarred",
    "followersIds",
    "followersNames",
    "streamUpdatedAt",
}
DEFAULTS: dict[str, Any] = {
    "salutationName": "",
    "rechtsform": "",
    "syncStatus": "pending_sync",
    "syncRetryCount": 0,
    "deleted": False,
}
DT_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2})(?::(\d{2}))?$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
INT_RE = re.compile(r"-?\d+")
MAX_SIZE = 200


@dataclass
class User:
    id: str
    user_name: str
    name: str
    api_key: str
    secret: str | None
    is_admin: bool
    type: str  # "api" | "admin" | "regular"


class EspoError(Exception):
    """An EspoCRM error answer: status, the X-Status-Reason text and an optional JSON body."""

    def __init__(self, status: int, reason: str = "", body: Any = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.body = body


def validation_error(field: str, vtype: str = "valid", entity: str = ENTITY) -> EspoError:
    return EspoError(
        400,
        f"Field validation failure; entityType: {entity}, field: {field}, type: {vtype}.",
        {
            "messageTranslation": {
                "label": "validationFailure",
                "scope": None,
                "data": {"field": field, "type": vtype},
            }
        },
    )


def now_espo() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


_id_counter = random.Random()


def new_id() -> str:
    """17 hex like PHP uniqid() + 4 random hex."""
    t = time.time()
    sec = int(t)
    usec = int((t - sec) * 1_000_000)
    return f"{sec:08x}{usec:05x}{_id_counter.getrandbits(16):04x}"
