"""What every part of the simulator shares: system attributes, formats, users, errors, ids.

The entity's fields are the instance's live metadata (sandbox/espocrm/metadata.py), which
starts as the project's one schema (services/espocrm/schema.py). Faithful to
shared/docs/espocrm-api.md.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.espocrm.schema import ENTITY

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
    password: str | None = None  # API users have none: they log in by key only


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
