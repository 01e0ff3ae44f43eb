"""The identity check before a create and the betnr uniqueness check (services/sync/linking.py),
one test per row of its table, against the fakes and fakeredis; write verification's pure compare."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest

from services.beteiligte.identity import Match, Strength
from services.store import keys
from services.sync.claims import Claims
from services.sync.identity_index import IdentityIndex
from services.sync.linking import Action, EarlierTry, Linker, choose
from services.sync.verify import carry_baseline, message, unapplied
from tests.support.fakes import BERLIN, FakeAdvo, FakeEspo
from tests.unit.test_identity_index import advo_person

HANS = {
    "kind": "person",
    "first_name": "Hans",
    "last_name": "Müller",
    "birth_date": "1970-01-01",
    "emails": [],
}


@pytest.fixture
async def setup() -> tuple[Linker, FakeEspo, FakeAdvo, IdentityIndex]:
    redis: Any = fakeredis.FakeAsyncRedis(decode_responses=True)
    espo, advo, index = FakeEspo(), FakeAdvo(), IdentityIndex(redis)
    await redis.hset(keys.IDENTITY_STATE, "status", "ready")
    await redis.hset(keys.IDENTITY_STATE, "fresh_at", "2026-01-01T00:00:00+00:00")
    linker = Linker(espo=espo, advo=advo, index=index, tz=BERLIN, claims=Claims(redis, 30, wait_seconds=0.2))
    return linker, espo, advo, index


async def add(advo: FakeAdvo, index: IdentityIndex, row: dict[str, Any]) -> None:
    advo.records[row["betNr"]] = row
    await index.upsert([row])


def test_choose_follows_the_table() -> None:
    strong, weak = Match(Strength.STRONG, "person: name + birth date"), Match(Strength.WEAK, "same name")
    assert choose([]).action is Action.CREATE
    assert choose([(1, strong), (2, weak)]).action is Action.LINK and choose([(1, strong)]).betnr == 1
    several = choose([(1, strong), (2, strong)])
    assert several.action is Action.HOLD and "Nr. 1" in several.message and "Nr. 2" in several.message
    assert choose([(3, weak)]).action is Action.HOLD


async def test_no_index_yet_the_create_builds_it_or_waits_while_another_builds(
    setup: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.store.lease import Lease
    from services.sync import linking

    # A create waits for another process's build within its budget; keep the budget short here.
    monkeypatch.setattr(linking, "INLINE_BUILD_SECONDS", 0.5)

    linker, _espo, advo, index = setup
    await index.redis.delete(keys.IDENTITY_STATE)
    await add(advo, index, advo_person(7, "Hans", "Müller", "1970-01-01"))
    other = Lease(index.redis, keys.IDENTITY_BUILDING, 30)
    assert await other.acquire()
    waiting = await linker.before_create("e1", HANS)
    assert waiting.action is Action.WAIT and "identity index" in waiting.message
    await other.release()
    decision = await linker.before_create("e1", HANS)  # builds it, then decides
    assert decision.action is Action.LINK and await index.ready()


async def test_no_candidate_creates_and_a_unique_one_links(setup: Any) -> None:
    linker, _espo, advo, index = setup
    assert (await linker.before_create("e1", HANS)).action is Action.CREATE
    await add(advo, index, advo_person(7, "Hans", "Mueller", "1970-01-01"))
    decision = await linker.before_create("e1", HANS)
    assert decision.action is Action.LINK and decision.betnr == 7 and decision.advo is not None
    assert decision.rule == "person: name + birth date"


async def test_a_party_already_linked_to_another_record_is_held_with_a_note_for_both(setup: Any) -> None:
    linker, espo, advo, index = setup
    await add(advo, index, advo_person(7, "Hans", "Müller", "1970-01-01"))
    espo.records["e0"] = {"id": "e0", "betnr": 7}
    decision = await linker.before_create("e1", HANS)
    assert decision.action is Action.HOLD and decision.related == ("e0",) and "e0" in decision.message


async def test_several_or_only_weak_candidates_hold_and_list_the_betnrs(setup: Any) -> None:
    linker, _espo, advo, index = setup
    await add(advo, index, advo_person(7, "Hans", "Müller", None))
    weak = await linker.before_create("e1", HANS)
    assert weak.action is Action.HOLD and weak.candidates == ((7, "same name, birth date missing"),)
    await add(advo, index, advo_person(8, "Hans", "Müller", "1970-01-01"))
    await add(advo, index, advo_person(9, "Hans", "Mueller", "1970-01-01"))
    several = await linker.before_create("e1", HANS)
    assert several.action is Action.HOLD and [b for b, _ in several.candidates] == [7, 8, 9]


async def test_a_candidate_deleted_in_advoware_is_dropped_and_decided_again(setup: Any) -> None:
    linker, _espo, advo, index = setup
    await add(advo, index, advo_person(7, "Hans", "Müller", "1970-01-01"))
    del advo.records[7]
    assert (await linker.before_create("e1", HANS)).action is Action.CREATE
    from services.beteiligte.identity import identity_of_content

    assert await index.candidates(identity_of_content(HANS)) == []


async def test_a_copied_betnr_is_held_and_names_the_record_that_has_it(setup: Any) -> None:
    linker, espo, _advo, _index = setup
    espo.records["e0"] = {"id": "e0", "betnr": 7}
    espo.records["e1"] = {"id": "e1", "betnr": 7}
    held = await linker.unique_link("e1", 7)
    assert held.action is Action.HOLD and held.related == ("e0",) and "7" in held.message
    del espo.records["e0"]
    assert (await linker.unique_link("e1", 7)).action is Action.LINK


def test_write_verification_reports_what_was_not_stored() -> None:
    sent = {"kind": "person", "title": "Dr. med.", "last_name": "Roth"}
    answered = {"kind": "person", "title": None, "last_name": "Roth"}
    assert unapplied(sent, answered, ["title", "last_name"]) == {"title": None}
    assert unapplied(sent, answered, ["last_name"]) == {}
    text = message("Advoware", sent, {"title": None})
    assert "title: Dr. med. (gesendet)" in text and "(leer) (gespeichert)" in text


def test_baselines_are_carried_until_a_sync_decides_the_field_anew() -> None:
    assert carry_baseline({"title": "Dr"}, [], {}) == {"title": "Dr"}
    assert carry_baseline({"title": "Dr"}, ["title"], {}) == {}
    assert carry_baseline({"title": "Dr"}, ["title"], {"title": "Dr."}) == {"title": "Dr."}


async def test_a_party_entered_in_advoware_since_the_last_poll_is_found_before_the_create(setup: Any) -> None:
    linker, _espo, advo, _index = setup
    advo.records[11] = advo_person(11, "Hans", "Müller", "1970-01-01")  # not in the index yet
    decision = await linker.before_create("e1", HANS)
    assert decision.action is Action.LINK and decision.betnr == 11


def test_an_earlier_try_s_party_is_recognised_by_its_creation_instant_also_when_stamped_with_an_offset() -> (
    None
):
    # The intent was written at 10:00 UTC, 12:00 in Berlin (summer); a server that stamps with an
    # offset ("Z") created the party at 10:30 UTC. Read as local time, 10:30 would be before 12:00.
    earlier = EarlierTry(None, "2026-07-01T12:00:00", HANS)
    assert earlier.made(4711, {"angelegtAm": "2026-07-01T10:30:00Z"}, BERLIN)
    assert earlier.made(4711, {"angelegtAm": "2026-07-01T12:30:00"}, BERLIN)  # the contract's local form
    assert not earlier.made(4711, {"angelegtAm": "2026-07-01T09:30:00Z"}, BERLIN)  # 11:30 in Berlin: older
    assert not earlier.made(4711, {"angelegtAm": "2026-07-01T11:59:59"}, BERLIN)


async def test_records_with_betnr_is_the_one_lookup_every_caller_uses() -> None:
    """services/sync/linking.py `records_with_betnr`: none, one, several (sorted); the betnr
    uniqueness check and the operators' `resolve_record` answer from it (the backfill's create too:
    test_backfill's rerun test)."""
    from services.errors import OperationError
    from services.ops.actions import resolve_record
    from services.sync.linking import records_with_betnr

    espo = FakeEspo()
    assert await records_with_betnr(espo, 5) == []
    with pytest.raises(OperationError) as none:
        await resolve_record(espo, None, 5)
    assert none.value.status == 404
    first = espo.add({"lastName": "A", "betnr": 5})
    espo.add({"lastName": "B", "betnr": 6})
    assert await records_with_betnr(espo, 5) == [first]
    assert await resolve_record(espo, None, 5) == first
    second = espo.add({"lastName": "C", "betnr": 5})
    both = await records_with_betnr(espo, 5)
    assert both == sorted([first, second])
    with pytest.raises(OperationError) as several:
        await resolve_record(espo, None, 5)
    assert several.value.status == 409
    redis: Any = fakeredis.FakeAsyncRedis(decode_responses=True)
    linker = Linker(
        espo=espo, advo=FakeAdvo(), index=IdentityIndex(redis), tz=BERLIN, claims=Claims(redis, 30)
    )
    assert await linker.other_holders(first, 5) == [second]
