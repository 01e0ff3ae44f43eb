"""The one watermark type of both change polls (services/store/watermark.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.store import keys
from services.store.watermark import FIRST_RUN_LOOKBACK, WATERMARK_OVERLAP, Watermark
from tests.support.fakes import Clock
from tests.support.runtime import fake_runtime

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_missing_watermark_reads_back_the_lookback(redis: Any) -> None:
    mark = Watermark.espocrm(redis)
    assert await mark.stored() is None
    assert await mark.read(NOW) == NOW - FIRST_RUN_LOOKBACK
    assert mark.read_from(NOW) == NOW - WATERMARK_OVERLAP


async def test_commit_then_read_round_trips_in_utc(redis: Any) -> None:
    mark = Watermark.advoware(redis)
    berlin = timezone(timedelta(hours=1))
    await mark.commit(datetime(2026, 3, 1, 13, 0, tzinfo=berlin))
    assert await redis.get(keys.WATERMARK_ADVOWARE) == "2026-03-01T12:00:00+00:00"
    assert await mark.read(NOW) == NOW


@pytest.mark.parametrize("raw", ["2026-03-01T12:00:00", "2026-03-01T12:00:00+00:00"])
async def test_naive_and_aware_values_read_alike(redis: Any, raw: str) -> None:
    """The two readers used to differ here: one returned naive datetimes."""
    await redis.set(keys.WATERMARK_ESPOCRM, raw)
    value = await Watermark.espocrm(redis).read(NOW)
    assert value == NOW and value.tzinfo is not None


async def test_unreadable_watermark_is_treated_as_missing(redis: Any) -> None:
    await redis.set(keys.WATERMARK_ESPOCRM, "yesterday")
    assert await Watermark.espocrm(redis).read(NOW) == NOW - FIRST_RUN_LOOKBACK


async def test_seed_never_overwrites_a_running_poll(redis: Any) -> None:
    mark = Watermark.advoware(redis)
    assert await mark.seed(NOW - timedelta(hours=1))
    assert not await mark.seed(NOW)
    assert await mark.read(NOW) == NOW - timedelta(hours=1)


async def test_both_polls_share_the_type_and_its_constants(redis: Any) -> None:
    rt = fake_runtime(None, None, redis, Clock())
    sweeper, watch = rt.sweeper(), rt.watch()
    assert sweeper.espo_watermark.name == keys.WATERMARK_ESPOCRM
    assert sweeper.advo_watermark.name == watch.mark.name == keys.WATERMARK_ADVOWARE
    for mark in (sweeper.espo_watermark, sweeper.advo_watermark, watch.mark):
        assert (mark.overlap, mark.lookback) == (WATERMARK_OVERLAP, FIRST_RUN_LOOKBACK)
    await redis.set(keys.WATERMARK_ADVOWARE, "2026-03-01T12:00:00")
    assert await watch.watermark(NOW + timedelta(days=3)) == await sweeper.advo_watermark.read(NOW)
