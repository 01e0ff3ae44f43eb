"""EspoCRM date-time formats, strictly, in one place.

EspoCRM stores and expects UTC as ``YYYY-MM-DD HH:MM:SS`` (``YYYY-MM-DD HH:MM`` is accepted
too); ISO ``T``/``Z`` gives a 400. Dates are ``YYYY-MM-DD``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

_DATETIME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2})(?::(\d{2}))?$")
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def format_espo_datetime(dt: datetime) -> str:
    """Aware datetime -> ``YYYY-MM-DD HH:MM:SS`` in UTC (fractions dropped). Naive is refused."""
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValueError("naive datetime: attach a time zone before formatting for EspoCRM")
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_espo_datetime(value: str) -> datetime:
    """``YYYY-MM-DD HH:MM[:SS]`` (UTC, as EspoCRM returns it) -> aware UTC datetime."""
    m = _DATETIME_RE.match(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise ValueError("not an EspoCRM date-time (expected 'YYYY-MM-DD HH:MM:SS')")
    year, month, day, hour, minute, second = (int(g) if g is not None else 0 for g in m.groups())
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def format_espo_date(d: date) -> str:
    if isinstance(d, datetime):
        raise ValueError("expected a date, got a datetime")
    return d.isoformat()


def parse_espo_date(value: str) -> date:
    m = _DATE_RE.match(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise ValueError("not an EspoCRM date (expected 'YYYY-MM-DD')")
    return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
