"""Advoware local time (no offset) ⇄ UTC across both 2026 DST switches (Europe/Berlin).

2026-03-29: 02:00 CET → 03:00 CEST (02:00–02:59 does not exist).
2026-10-25: 03:00 CEST → 02:00 CET (02:00–02:59 happens twice).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.advoware.timezone import (
    is_ambiguous,
    local_to_utc,
    parse_advoware_datetime,
    query_since_local,
    utc_to_local_naive,
    utc_to_local_query,
)

BERLIN = ZoneInfo("Europe/Berlin")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-01-15T12:00:00", utc(2026, 1, 15, 11, 0)),  # winter, +01:00
        ("2026-07-01T14:05:09", utc(2026, 7, 1, 12, 5, 9)),  # summer, +02:00
        # spring switch
        ("2026-03-29T01:59:59", utc(2026, 3, 29, 0, 59, 59)),
        ("2026-03-29T03:00:00", utc(2026, 3, 29, 1, 0)),
        ("2026-03-29T03:30:00", utc(2026, 3, 29, 1, 30)),
        # autumn switch: before, the repeated hour (earlier instant), after
        ("2026-10-25T01:59:59", utc(2026, 10, 24, 23, 59, 59)),
        ("2026-10-25T02:00:00", utc(2026, 10, 25, 0, 0)),
        ("2026-10-25T02:30:00", utc(2026, 10, 25, 0, 30)),
        ("2026-10-25T02:59:59", utc(2026, 10, 25, 0, 59, 59)),
        ("2026-10-25T03:00:00", utc(2026, 10, 25, 2, 0)),
        # the day before/after: no shift by a day around midnight
        ("2026-03-28T23:30:00", utc(2026, 3, 28, 22, 30)),
        ("2026-10-26T00:30:00", utc(2026, 10, 25, 23, 30)),
    ],
)
def test_local_to_utc(local: str, expected: datetime) -> None:
    result = local_to_utc(local, BERLIN)
    assert result == expected
    assert result.tzinfo is UTC


def test_nonexistent_spring_hour_uses_zoneinfo_mapping_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="services.advoware.timezone"):
        result = local_to_utc("2026-03-29T02:30:00", BERLIN)
    # fold=0 reads the skipped wall time with the pre-switch offset (+01:00).
    assert result == utc(2026, 3, 29, 1, 30)
    assert any("nonexistent" in rec.message for rec in caplog.records)


def test_existing_times_do_not_log(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="services.advoware.timezone"):
        local_to_utc("2026-10-25T02:30:00", BERLIN)
        local_to_utc("2026-03-29T03:00:00", BERLIN)
    assert not caplog.records


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-07-01T14:05:09", datetime(2026, 7, 1, 14, 5, 9)),
        ("2026-07-01T14:05:09.5", datetime(2026, 7, 1, 14, 5, 9, 500000)),
        ("2026-07-01T14:05:09.123", datetime(2026, 7, 1, 14, 5, 9, 123000)),
        ("2026-07-01T14:05:09.1234567", datetime(2026, 7, 1, 14, 5, 9, 123456)),  # .NET 7 digits
        ("2026-07-01 14:05:09", datetime(2026, 7, 1, 14, 5, 9)),
        ("2026-07-01T14:05", datetime(2026, 7, 1, 14, 5)),
    ],
)
def test_parse_advoware_datetime(raw: str, expected: datetime) -> None:
    parsed = parse_advoware_datetime(raw)
    assert parsed == expected
    assert parsed.tzinfo is None


def test_parse_with_offset_is_respected() -> None:
    assert local_to_utc("2026-07-01T14:05:09Z", BERLIN) == utc(2026, 7, 1, 14, 5, 9)
    assert local_to_utc("2026-07-01T14:05:09+02:00", BERLIN) == utc(2026, 7, 1, 12, 5, 9)


@pytest.mark.parametrize("raw", ["", "01.07.2026 14:05", "2026-07-01", "gestern", "2026-13-01T00:00:00"])
def test_parse_rejects_garbage(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_advoware_datetime(raw)


def test_fractional_seconds_convert() -> None:
    assert local_to_utc("2026-10-25T02:15:00.999", BERLIN) == utc(2026, 10, 25, 0, 15, 0, 999000)


def test_datetime_input_and_roundtrip() -> None:
    for instant in (
        utc(2026, 3, 29, 0, 59),
        utc(2026, 3, 29, 1, 0),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 2, 0),
    ):
        local = utc_to_local_naive(instant, BERLIN)
        assert local.tzinfo is None
        assert local_to_utc(local, BERLIN) == instant


def test_second_pass_of_repeated_hour_reads_as_first_pass() -> None:
    # 01:30 UTC is 02:30 CET (second pass); the naive value cannot say so: fold=0 → 00:30 UTC.
    local = utc_to_local_naive(utc(2026, 10, 25, 1, 30), BERLIN)
    assert local == datetime(2026, 10, 25, 2, 30)
    assert local_to_utc(local, BERLIN) == utc(2026, 10, 25, 0, 30)


def test_utc_to_local_naive_across_spring_switch() -> None:
    assert utc_to_local_naive(utc(2026, 3, 29, 0, 59, 59), BERLIN) == datetime(2026, 3, 29, 1, 59, 59)
    assert utc_to_local_naive(utc(2026, 3, 29, 1, 0), BERLIN) == datetime(2026, 3, 29, 3, 0)
    # naive input is taken as UTC
    assert utc_to_local_naive(datetime(2026, 7, 1, 12, 0), BERLIN) == datetime(2026, 7, 1, 14, 0)


def test_is_ambiguous() -> None:
    assert is_ambiguous(datetime(2026, 10, 25, 2, 0), BERLIN)
    assert is_ambiguous(datetime(2026, 10, 25, 2, 59), BERLIN)
    assert not is_ambiguous(datetime(2026, 10, 25, 3, 0), BERLIN)
    assert not is_ambiguous(datetime(2026, 10, 25, 1, 59), BERLIN)
    assert not is_ambiguous(datetime(2026, 3, 29, 2, 30), BERLIN)  # nonexistent, not ambiguous


@pytest.mark.parametrize(
    ("watermark", "overlap", "expected"),
    [
        (utc(2026, 7, 1, 12, 0), timedelta(minutes=5), "2026-07-01T13:55:00"),
        (utc(2026, 1, 15, 12, 0, 30, 999999), timedelta(0), "2026-01-15T13:00:30"),  # truncated, never later
        # spring: 01:02 UTC = 03:02 CEST; minus 5 min of real time = 00:57 UTC = 01:57 CET
        (utc(2026, 3, 29, 1, 2), timedelta(minutes=5), "2026-03-29T01:57:00"),
        # autumn: results inside the repeated hour move one more hour back
        (utc(2026, 10, 25, 0, 40), timedelta(minutes=10), "2026-10-25T01:30:00"),  # 02:30 CEST → 01:30
        (utc(2026, 10, 25, 1, 40), timedelta(minutes=10), "2026-10-25T01:30:00"),  # 02:30 CET → 01:30
        (utc(2026, 10, 25, 2, 10), timedelta(minutes=5), "2026-10-25T03:05:00"),  # after the switch
        (utc(2026, 10, 24, 23, 59), timedelta(0), "2026-10-25T01:59:00"),  # just before
    ],
)
def test_query_since_local(watermark: datetime, overlap: timedelta, expected: str) -> None:
    assert query_since_local(watermark, BERLIN, overlap) == expected


def test_query_covers_every_change_after_the_watermark_in_the_repeated_hour() -> None:
    """Whatever the watermark, every instant after it has a local stamp >= the query value."""
    query_tz = BERLIN
    start = utc(2026, 10, 24, 23, 0)
    for minutes in range(0, 240, 7):
        watermark = start + timedelta(minutes=minutes)
        since = datetime.fromisoformat(query_since_local(watermark, query_tz, timedelta(0)))
        for later in range(0, 120, 5):
            changed = watermark + timedelta(minutes=later)
            assert utc_to_local_naive(changed, query_tz) >= since


def test_query_rejects_negative_overlap_and_alias() -> None:
    with pytest.raises(ValueError):
        query_since_local(utc(2026, 7, 1), BERLIN, timedelta(minutes=-1))
    assert utc_to_local_query is query_since_local


def test_other_time_zone() -> None:
    vienna_is_berlin = ZoneInfo("Europe/Vienna")
    assert local_to_utc("2026-10-25T02:30:00", vienna_is_berlin) == utc(2026, 10, 25, 0, 30)
    london = ZoneInfo("Europe/London")
    assert local_to_utc("2026-10-25T01:30:00", london) == utc(2026, 10, 25, 0, 30)


def test_utc_as_the_zone_for_a_server_writing_utc_stamps() -> None:
    """ADVOWARE_TIMEZONE=UTC (the vendor's own clients write UTC): stamps are read as they are, and
    the change poll's query is the watermark itself, also across the German DST switch."""
    utc = ZoneInfo("UTC")
    assert local_to_utc("2026-10-25T02:30:00", utc) == datetime(2026, 10, 25, 2, 30, tzinfo=UTC)
    assert not is_ambiguous(datetime(2026, 10, 25, 2, 30), utc)
    mark = datetime(2026, 3, 29, 2, 30, tzinfo=UTC)
    assert query_since_local(mark, utc, timedelta(minutes=2)) == "2026-03-29T02:28:00"
