"""Advoware's local, offset-less timestamps ⇄ UTC (ASSUMED contract, advoware-api.md §2.2).

`geaendertAm` / `angelegtAm` are naive datetimes in the firm's zone (default Europe/Berlin):

* reading: attach the zone, convert to UTC. In the repeated autumn hour take the earlier instant
  (``fold=0``); a time in the skipped spring hour should not occur; if it does, zoneinfo's mapping
  is accepted (``fold=0`` reads it with the pre-switch offset) and logged.
* querying (`geaendertAb`): watermark (UTC) minus the overlap, as local time; if that falls into
  the repeated autumn hour, one more hour earlier, so the query covers both passes of it.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

_ADVOWARE_DT = re.compile(
    r"^\s*(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?\s*(Z|[+-]\d{2}:?\d{2})?\s*$"
)


def parse_advoware_datetime(value: str) -> datetime:
    """Parse ``2026-07-01T14:05:09`` (also ``.1``…``.1234567`` fractions, a space instead of ``T``).

    Returns a naive datetime (local time) for the contract's offset-less form; should the server
    ever send an offset or ``Z``, the result is aware and conversion functions respect it.
    Raises ``ValueError`` for anything else.
    """
    match = _ADVOWARE_DT.match(value)
    if not match:
        raise ValueError("not an Advoware datetime")
    day, clock, fraction, offset = match.groups()
    if len(clock) == 5:
        clock += ":00"
    micro = (fraction or "")[:6].ljust(6, "0")
    iso = f"{day}T{clock}.{micro}"
    if offset:
        iso += "+00:00" if offset == "Z" else offset if ":" in offset else f"{offset[:3]}:{offset[3:]}"
    return datetime.fromisoformat(iso)


def _is_nonexistent(naive: datetime, tz: ZoneInfo) -> bool:
    aware = naive.replace(tzinfo=tz, fold=0)
    back = aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    return back != naive.replace(fold=0)


def is_ambiguous(naive: datetime, tz: ZoneInfo) -> bool:
    """True for a wall time that occurs twice (the repeated autumn hour)."""
    early = naive.replace(tzinfo=tz, fold=0)
    late = naive.replace(tzinfo=tz, fold=1)
    return early.utcoffset() != late.utcoffset() and not _is_nonexistent(naive, tz)


def local_to_utc(value: str | datetime, tz: ZoneInfo) -> datetime:
    """Advoware local time (naive str or datetime) → aware UTC datetime.

    Ambiguous (repeated autumn hour) → the earlier instant; nonexistent (skipped spring hour) →
    zoneinfo's mapping (pre-switch offset), logged. An aware input is only converted to UTC.
    """
    dt = parse_advoware_datetime(value) if isinstance(value, str) else value
    if dt.tzinfo is not None:
        return dt.astimezone(UTC)
    if _is_nonexistent(dt, tz):
        log.warning("nonexistent local time in the DST gap; using zoneinfo's mapping (zone=%s)", tz.key)
    return dt.replace(tzinfo=tz, fold=0).astimezone(UTC)


def utc_to_local_naive(dt: datetime, tz: ZoneInfo) -> datetime:
    """Aware datetime (naive is taken as UTC) → naive wall time in ``tz``."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(tz).replace(tzinfo=None, fold=0)


def query_since_local(watermark_utc: datetime, tz: ZoneInfo, overlap: timedelta = timedelta(0)) -> str:
    """The ``geaendertAb`` value for "changed since ``watermark_utc``", re-reading ``overlap`` more.

    The overlap is subtracted as real elapsed time; the local result is truncated to whole seconds
    (earlier, never later) and moved one more hour back if it lies in the repeated autumn hour.
    """
    if overlap < timedelta(0):
        raise ValueError("overlap must not be negative")
    if watermark_utc.tzinfo is None:
        watermark_utc = watermark_utc.replace(tzinfo=UTC)
    local = utc_to_local_naive(watermark_utc - overlap, tz).replace(microsecond=0)
    if is_ambiguous(local, tz):
        local -= timedelta(hours=1)
    return local.strftime("%Y-%m-%dT%H:%M:%S")


# The name used in docs/architecture.md.
utc_to_local_query = query_since_local
