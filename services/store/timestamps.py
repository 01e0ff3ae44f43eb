"""The service's moments in Redis: ISO-8601 text in UTC, and "naive" means UTC.

Values written by older versions (or by hand, in an incident) may lack an offset; readers take
those as UTC rather than as the local time of whichever process reads them.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The default clock of the stores (tests and the composition root pass their own)."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive one is taken to be UTC already."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_utc(text: object) -> datetime | None:
    """An ISO-8601 timestamp as an aware UTC datetime; None when it is not one."""
    try:
        return as_utc(datetime.fromisoformat(str(text)))
    except ValueError:
        return None
