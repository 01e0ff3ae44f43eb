"""Small shared types of the mapper: kinds, warnings and the one mapping error."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from services.errors import InvalidDataError

log = logging.getLogger("services.beteiligte")

Kind = Literal["person", "company"]
PERSON: Kind = "person"
COMPANY: Kind = "company"

# canonical field name -> JSON-serialisable value (str | None | bool | list[dict]).
SyncedContent = dict[str, Any]


class MappingError(InvalidDataError, ValueError):
    """The mapper refuses to produce output that the target system would reject.

    The message names the field and the rule, never the personal data itself. Part of the
    error tree (``InvalidDataError``); still a ``ValueError`` for callers that catch that.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class MappingWarning:
    """Something the mapper kept or skipped instead of guessing.

    ``code`` is one of: ``unknown_value`` (kept verbatim, not in the table),
    ``not_representable`` (the target system cannot hold it; not written),
    ``ignored`` (a value that does not belong to this kind of record),
    ``invalid`` (an unparseable value, read as empty),
    ``kept`` (entries of the target the sync cannot read, written back untouched).
    ``value`` may hold the raw value for the caller; it is never logged.
    """

    field: str
    code: str
    value: Any = None


def warn(sink: list[MappingWarning] | None, field: str, code: str, value: Any = None) -> None:
    """Record a warning (if the caller collects them) and log it without the value (no personal data)."""
    log.warning("%s field=%s", code, field)
    if sink is not None:
        sink.append(MappingWarning(field, code, value))
