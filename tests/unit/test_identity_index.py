"""The identity index against fakeredis: built from one listing (resumable), kept current by
upserts, and answering candidates without any Advoware call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import fakeredis
import pytest

from services.beteiligte.identity import Strength, identity_of_content
from services.store import keys
from services.sync.identity_index import IdentityIndex
from tests.support.fakes import FakeAdvo

BERLIN = ZoneInfo("Europe/Berlin")


def advo_person(betnr: int, first: str, last: str, born: str | None = None) -> dict[str, Any]:
    return {
        "betNr": betnr,
        "rechtsform": None,
        "anrede": "Herr",
        "vorname": first,
        "name": last,
        "geburtsdatum": born,
        "kommunikation": [],
        "geaendertAm": "2026-01-01T10:00:00",
    }


def advo_company(betnr: int, name: str, form: str, reg: str | None = None) -> dict[str, Any]:
    return {
        "betNr": betnr,
        "rechtsform": form,
        "anrede": "Firma",
        "name": name,
        "handelsRegisterNummer": reg,
        "kommunikation": [],
        "geaendertAm": "2026-01-01T10:00:00",
    }


@pytest.fixture
def redis() -> fakeredis.FakeAsyncRedis:
    return fakeredis.FakeAsyncRedis(decode_responses=True)


def fake_advo(rows: list[dict[str, Any]]) -> FakeAdvo:
    advo = FakeAdvo()
    for row in rows:
        advo.records[row["betNr"]] = row
    return advo


def hans(born: str | None = "1970-01-01") -> Any:
    return identity_of_content(
        {"kind": "person", "first_name": "Hans", "last_name": "Müller", "birth_date": born, "emails": []}
    )


async def test_build_from_one_listing_then_answer_from_redis_only(redis: Any) -> None:
    advo = fake_advo(
        [
            advo_person(1, "Hans", "Mueller", "1970-01-01"),
            advo_person(2, "Eva", "Roth"),
            advo_company(3, "Isar", "GmbH"),
        ]
    )
    index = IdentityIndex(redis)
    assert not await index.ready() and (await index.state()).status == "missing"
    state = await index.build(advo)
    # the listing, then one verification pass that finds nothing new
    assert state.ready and state.entries == 3 and advo.calls["list"] == 2
    found = await index.candidates(hans())
    assert [(b, m.strength) for b, m in found] == [(1, Strength.STRONG)]
    assert await index.candidates(hans("1999-09-09")) == []
    assert advo.calls["list"] == 2 and advo.calls["get"] == 0  # lookups cost no Advoware call
    again = await index.build(advo)  # ready: nothing is read again
    assert again.ready and advo.calls["list"] == 2


async def test_a_build_out_of_budget_resumes_one_page_before_its_checkpoint(redis: Any) -> None:
    rows = [advo_person(i, f"P{i}", "Roth", "1980-01-01") for i in range(1, 251)]
    advo = fake_advo(rows)
    index = IdentityIndex(redis)
    first = await index.build(advo, budget_seconds=0)  # stops after its first page
    assert first.status == "building" and first.read == 100 and first.entries == 100
    assert not await index.ready()
    done = await index.build(advo)
    assert done.ready and done.entries == 250 and done.read == 250


async def test_upserts_replace_the_old_lookup_keys(redis: Any) -> None:
    index = IdentityIndex(redis)
    await redis.hset(keys.IDENTITY_STATE, "status", "ready")
    await index.upsert([advo_person(5, "Hans", "Müller", "1970-01-01")])
    assert [b for b, _ in await index.candidates(hans())] == [5]
    await index.upsert([advo_person(5, "Hans", "Schulz", "1970-01-01")])  # renamed in Advoware
    assert await index.candidates(hans()) == []
    assert await redis.smembers(keys.identity_lookup("person:mueller|hans")) == set()
    await index.upsert([advo_person(6, "Hans", "Müller")])
    assert [(b, m.strength) for b, m in await index.candidates(hans())] == [(6, Strength.WEAK)]
    await index.remove(6)
    assert await index.candidates(hans()) == []


async def test_companies_are_found_by_register_number_too(redis: Any) -> None:
    index = IdentityIndex(redis)
    await index.upsert([advo_company(9, "Neue Firma", "GmbH", "HRB 5")])
    renamed = identity_of_content(
        {"kind": "company", "company_name": "Alte Firma GmbH", "register_number": "HRB 5 B", "emails": []}
    )
    assert [(b, m.strength) for b, m in await index.candidates(renamed)] == [(9, Strength.WEAK)]


async def test_losing_redis_means_not_ready_and_a_fresh_build(redis: Any) -> None:
    advo = fake_advo([advo_person(1, "Hans", "Mueller", "1970-01-01")])
    index = IdentityIndex(redis)
    await index.build(advo)
    await redis.flushall()
    assert not await index.ready()
    assert (await index.build(advo)).ready and advo.calls["list"] == 4


async def test_a_create_that_finds_another_build_running_waits_for_it(redis: Any) -> None:
    """Two creates in one batch on an empty Redis: the second one must not give up at once
    (it would wait for the next sweep) but wait for the first one's build."""
    advo = fake_advo([advo_person(100001, "Hans", "Müller", "1970-01-01")])
    builder, waiter = IdentityIndex(redis), IdentityIndex(redis)
    first = asyncio.create_task(builder.build(advo, budget_seconds=5))
    await asyncio.sleep(0)  # the first build holds the lease now
    assert await redis.exists(keys.IDENTITY_BUILDING)
    state = await waiter.build(advo, budget_seconds=5)
    assert state.ready
    assert (await first).ready


class ShiftingAdvo(FakeAdvo):
    """A listing whose order shifts while it is read: the first full read misses one party
    (a row deleted ahead of it moved it back across a page boundary)."""

    def __init__(self, missed: int) -> None:
        super().__init__()
        self.missed: int | None = missed

    async def iter_beteiligte(
        self, *, changed_since_local: str | None = None, take: int = 100, start: int = 0
    ) -> AsyncIterator[dict[str, Any]]:
        async for row in super().iter_beteiligte(
            changed_since_local=changed_since_local, take=take, start=start
        ):
            if row["betNr"] == self.missed:
                continue
            yield row
        self.missed = None  # later reads see everything


async def test_a_build_whose_listing_shifted_cannot_skip_a_party(redis: Any) -> None:
    advo = ShiftingAdvo(missed=137)
    for i in range(1, 251):
        advo.records[i] = advo_person(i, f"P{i}", "Roth", "1980-01-01")
    index = IdentityIndex(redis)
    state = await index.build(advo)
    assert state.ready and state.entries == 250
    assert await redis.hget(keys.IDENTITY_ENTRIES, "137")


def _local(moment: datetime) -> str:
    return moment.astimezone(BERLIN).replace(tzinfo=None).isoformat(timespec="seconds")


async def test_refresh_follows_advowares_clock_when_it_runs_behind(redis: Any) -> None:
    """Advoware's clock is 10 minutes behind ours. A party created just after a refresh carries
    a stamp well before our "now": the next refresh must still read it."""
    behind = timedelta(minutes=10)
    now = datetime.now(UTC)
    index = IdentityIndex(redis)
    await redis.hset(
        keys.IDENTITY_STATE,
        mapping={"status": "ready", "fresh_at": (now - timedelta(minutes=30)).isoformat()},
    )
    advo = fake_advo(
        [dict(advo_person(1, "Eva", "Roth"), geaendertAm=_local(now - timedelta(minutes=1) - behind))]
    )
    assert await index.refresh(advo, BERLIN) == 1
    created = dict(
        advo_person(2, "Hans", "Müller", "1970-01-01"),
        geaendertAm=_local(now + timedelta(seconds=30) - behind),
    )
    advo.records[2] = created
    await index.refresh(advo, BERLIN)
    assert [b for b, _ in await index.candidates(hans())] == [2]
