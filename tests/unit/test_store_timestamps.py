"""Moments in Redis (services/store/timestamps.py): ISO-8601 in UTC, naive taken as UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.store.timestamps import as_utc, parse_utc, utc_now

NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_as_utc_converts_an_offset_and_takes_naive_for_utc() -> None:
    berlin = timezone(timedelta(hours=1))
    assert as_utc(datetime(2026, 3, 1, 13, 0, tzinfo=berlin)) == NOON
    assert as_utc(datetime(2026, 3, 1, 13, 0, tzinfo=berlin)).tzinfo is UTC
    assert as_utc(datetime(2026, 3, 1, 12, 0)) == NOON
    assert as_utc(NOON).isoformat() == "2026-03-01T12:00:00+00:00"


@pytest.mark.parametrize(
    "text", ["2026-03-01T12:00:00", "2026-03-01T12:00:00+00:00", "2026-03-01T13:00:00+01:00"]
)
def test_parse_utc_reads_naive_and_aware_alike(text: str) -> None:
    parsed = parse_utc(text)
    assert parsed == NOON and parsed is not None and parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["yesterday", "", None, 17])
def test_parse_utc_answers_none_for_what_is_not_a_timestamp(text: object) -> None:
    assert parse_utc(text) is None


def test_utc_now_is_aware() -> None:
    assert utc_now().tzinfo is UTC
