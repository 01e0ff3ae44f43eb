"""First-run matching (pure table tests) and the backfill runner against the in-memory fakes:
dry runs write nothing, reruns and interrupted runs never create a second record."""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import fakeredis
import pytest

from services.backfill.matching import match_records
from services.backfill.plan import PARK_PREFIX, no_progress
from services.backfill.runner import Backfill, BackfillOptions
from services.beteiligte import mapper
from services.beteiligte.identity import (
    Strength,
    compare,
    identity_of_advo,
    identity_of_espo,
    split_company_name,
)
from services.beteiligte.normalize import name_key as fold
from services.beteiligte.normalize import register_court_key as court_key
from services.beteiligte.normalize import register_number_key as register_key
from services.errors import BackfillAbortedError, BackfillBusyError
from services.store import keys
from services.store.keys import BACKFILL_RUN_STATE as RUN_STATE
from services.store.keys import BACKFILL_RUNNING
from services.sync.model import Result, Trigger
from services.sync.snapshot import SnapshotStore
from tests.support.fakes import Clock, FakeAdvo, FakeEspo
from tests.support.records import espo_email
from tests.support.runtime import World, fake_runtime

# --------------------------------------------------------------------------- record builders


def ep(rid: str, first: str, last: str, born: str | None = None, **extra: Any) -> dict[str, Any]:
    """EspoCRM person (as a list row or a full record)."""
    return {
        "id": rid,
        "beteiligterTyp": "Person",
        "firstName": first,
        "lastName": last,
        "name": f"{first} {last}",
        "geburtsdatum": born,
        **extra,
    }


def ap(betnr: int, first: str, last: str, born: str | None = None, **extra: Any) -> dict[str, Any]:
    """Advoware person."""
    return {"betNr": betnr, "anrede": "Herr", "vorname": first, "name": last, "geburtsdatum": born, **extra}


def ec(
    rid: str, name: str, form: str = "", hrb: str | None = None, court: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "id": rid,
        "beteiligterTyp": "Firma",
        "name": name,
        "rechtsform": form,
        "handelsregisterNummer": hrb,
        "registergericht": court,
        **extra,
    }


def ac(
    betnr: int, name: str, form: str | None = None, hrb: str | None = None, court: str | None = None
) -> dict[str, Any]:
    return {
        "betNr": betnr,
        "anrede": "Firma",
        "name": name,
        "rechtsform": form,
        "handelsRegisterNummer": hrb,
        "registergericht": court,
    }


def mail(address: str) -> dict[str, Any]:
    return {"emailAddress": address}


def komm(address: str) -> dict[str, Any]:
    return {"kommunikation": [{"kommKz": 4, "tlf": address, "bemerkung": None, "online": False}]}


# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Müller", "Mueller"),
        ("MÜLLER", "mueller"),
        ("Hans-Jürgen", "Hans Jürgen"),
        ("  Käthe   Groß ", "Kaethe Gross"),
        ("Müller & Söhne", "Mueller und Soehne"),
        ("Ömer Öztürk", "Oemer Oeztuerk"),
        ("Renée", "Renee"),
        ("Yılmaz", "Yilmaz"),
        ("Dürr, Tischlerei", "Dürr Tischlerei"),
        ("Mu\u0308ller", "Müller"),  # decomposed umlaut (NFD) == composed
    ],
)
def test_fold_makes_spelling_variants_equal(a: str, b: str) -> None:
    assert fold(a) == fold(b)


@pytest.mark.parametrize(("a", "b"), [("Müller", "Muller"), ("Maier", "Meier"), ("Anna", "Anne")])
def test_fold_keeps_different_names_apart(a: str, b: str) -> None:
    assert fold(a) != fold(b)


@pytest.mark.parametrize(
    ("name", "base", "form"),
    [
        ("Isar Software GmbH", "isarsoftware", "GmbH"),
        ("Isar Software", "isarsoftware", None),
        ("Müller & Söhne Bau GmbH & Co. KG", "mueller&soehnebau", "GmbH & Co. KG"),
        ("Mueller und Soehne Bau GmbH u. Co. KG", "mueller&soehnebau", "GmbH & Co. KG"),
        ("Bäckerei Schäfer e. K.", "baeckereischaefer", "e.K."),
        ("Elbtal Energie Aktiengesellschaft", "elbtalenergie", "AG"),
        ("Mode & Sonstiges", "mode&sonstiges", None),  # "Sonstige" is never read from a name
        ("GmbH", "gmbh", None),  # a name that is only a legal form stays a name
    ],
)
def test_company_name_splits_off_the_legal_form(name: str, base: str, form: str | None) -> None:
    assert split_company_name(name) == (base, form)


def test_register_and_court_keys() -> None:
    assert register_key("HRB 12345 B") == register_key("hrb 12.345") == register_key("HRB12345") == "HRB12345"
    assert register_key("HRA 77") != register_key("HRB 77")
    assert register_key(None) is None
    assert court_key("AG München") == court_key("Amtsgericht Muenchen") == court_key("München") == "muenchen"


# --------------------------------------------------------------------------- the identity rule


@pytest.mark.parametrize(
    ("espo", "advo", "strength"),
    [
        # people: name + birth date
        (ep("e", "Hans", "Müller", "1970-03-01"), ap(1, "Hans", "Mueller", "1970-03-01"), Strength.STRONG),
        (
            ep("e", "Hans-Jürgen", "Groß", "1970-03-01"),
            ap(1, "Hans Jürgen", "Gross", "1970-03-01"),
            Strength.STRONG,
        ),
        (ep("e", "Hans", "Müller", "1970-03-01"), ap(1, "Hans", "Müller", "1980-03-01"), Strength.NONE),
        (ep("e", "Hans", "Müller", "1970-03-01"), ap(1, "Hanna", "Müller", "1970-03-01"), Strength.NONE),
        (ep("e", "Hans", "Müller"), ap(1, "Hans", "Müller", "1970-03-01"), Strength.WEAK),
        (ep("e", "Hans", "Müller"), ap(1, "Hans", "Müller"), Strength.WEAK),
        # birth date missing, but a shared e-mail address confirms it
        (
            ep("e", "Hans", "Müller", **mail("H.Mueller@example.org")),
            ap(1, "Hans", "Müller", "1970-03-01", **komm("h.mueller@example.org")),
            Strength.STRONG,
        ),
        # companies: name (+ Rechtsform) + register entry
        (
            ec("e", "Isar Software GmbH", "GmbH", "HRB 12345", "AG München"),
            ac(1, "Isar Software", "GmbH", "HRB12345", "Amtsgericht München"),
            Strength.STRONG,
        ),
        (
            ec("e", "Isar Software GmbH", "GmbH", "HRB 12345", "Amtsgericht München"),
            ac(1, "Isar Software GmbH", "GmbH", "HRB 99999", "Amtsgericht München"),
            Strength.NONE,
        ),
        (
            ec("e", "Isar Software GmbH", "GmbH", "HRB 12345", "Amtsgericht München"),
            ac(1, "Isar Software GmbH", "GmbH", "HRB 12345", "Amtsgericht Hamburg"),
            Strength.NONE,
        ),
        # no register on one side: name + Rechtsform suffices (both known, equal)
        (
            ec("e", "Isar Software GmbH", "GmbH"),
            ac(1, "Isar Software GmbH", "GmbH", "HRB 1"),
            Strength.STRONG,
        ),
        (ec("e", "Isar Software GmbH", "GmbH"), ac(1, "Isar Software AG", "AG"), Strength.NONE),
        # a GbR without register: name + Rechtsform
        (ec("e", "Praxis Dr. Kühn GbR", "GbR"), ac(1, "Praxis Dr. Kühn", "GbR"), Strength.STRONG),
        # nothing but the name: might be the same, a person decides
        (ec("e", "Tischlerei Dürr"), ac(1, "Tischlerei Duerr"), Strength.WEAK),
        # same register entry under another name (renamed?): a person decides
        (
            ec("e", "Alte Firma GmbH", "GmbH", "HRB 5", "AG Köln"),
            ac(1, "Neue Firma GmbH", "GmbH", "HRB 5", "Amtsgericht Köln"),
            Strength.WEAK,
        ),
        # a person and a company are never the same party
        (ep("e", "", "Dürr"), ac(1, "Dürr"), Strength.NONE),
    ],
)
def test_identity_rule(espo: dict[str, Any], advo: dict[str, Any], strength: Strength) -> None:
    m = compare(identity_of_espo(espo), identity_of_advo(advo))
    assert m.strength is strength, m
    assert compare(identity_of_advo(advo), identity_of_espo(espo)).strength is strength  # symmetric


# --------------------------------------------------------------------------- matching


def test_exact_betnr_links_and_bad_betnrs_are_conflicts() -> None:
    report = match_records(
        [
            ep("e1", "Hans", "Müller", betnr=1),
            ep("e2", "Eva", "Schmidt", betnr=99),  # no such Advoware record
            ep("e3", "Jo", "Weber", betnr=3),
            ep("e4", "Jo", "Weber", betnr=3),  # two EspoCRM records claim one betnr
        ],
        [ap(1, "Hans", "Mueller-Anders"), ap(3, "Jo", "Weber")],
    )
    assert [(x.espo_id, x.betnr) for x in report.linked_by_betnr] == [("e1", 1)]  # betnr beats names
    assert [(c.betnr, c.espo_ids) for c in report.conflicts] == [(3, ["e3", "e4"]), (99, ["e2"])]
    assert report.espo_only == [] and report.advo_only == [] and report.linked_by_identity == []


def test_identity_links_variants_and_leaves_real_singles_alone() -> None:
    report = match_records(
        [
            ep("e1", "Hans-Jürgen", "Müller", "1970-03-01"),
            ep("e2", "Hans", "Müller", "1980-01-01"),  # same name, other person
            ec("e3", "Isar Software GmbH", "GmbH", "HRB 12345", "AG München"),
            ep("e4", "Neu", "Anlage", "1990-01-01"),
        ],
        [
            ap(1, "Hans Jürgen", "Mueller", "1970-03-01"),
            ap(2, "Hans", "Müller", "1955-05-05"),  # same name, third person
            ac(3, "Isar Software", "GmbH", "HRB12345", "Amtsgericht München"),
            ap(4, "Nur", "Advoware", "1960-01-01"),
        ],
    )
    assert [(x.espo_id, x.betnr) for x in report.linked_by_identity] == [("e1", 1), ("e3", 3)]
    assert report.espo_only == ["e2", "e4"]
    assert report.advo_only == [2, 4]
    assert report.ambiguous == []


def test_two_candidates_on_either_side_are_ambiguous_not_guessed() -> None:
    report = match_records(
        [
            ep("e1", "Eva", "Zwilling", "1980-02-02"),
            ep("e2", "Max", "Doppel", "1975-01-01"),
            ep("e3", "Max", "Doppel", "1975-01-01"),
        ],
        [
            ap(1, "Eva", "Zwilling", "1980-02-02"),
            ap(2, "Eva", "Zwilling", "1980-02-02"),
            ap(3, "Max", "Doppel", "1975-01-01"),
        ],
    )
    assert report.linked_by_identity == [] and report.espo_only == [] and report.advo_only == []
    groups = {tuple(a.espo_ids): (a.betnrs, a.reasons) for a in report.ambiguous}
    assert groups[("e1",)][0] == [1, 2]
    assert groups[("e2", "e3")][0] == [3]
    assert all("several candidates" in r for _b, rs in groups.values() for r in rs)


def test_weak_candidates_are_ambiguous_and_never_created() -> None:
    report = match_records([ep("e1", "Eva", "Ohnedatum")], [ap(1, "Eva", "Ohnedatum", "1980-02-02")])
    assert report.espo_only == [] and report.advo_only == []
    assert report.ambiguous[0].espo_ids == ["e1"] and report.ambiguous[0].betnrs == [1]
    assert report.ambiguous[0].reasons == ["same name, birth date missing"]


def test_a_strong_match_wins_over_a_weak_second_candidate() -> None:
    report = match_records(
        [ep("e1", "Eva", "Klar", "1980-02-02")],
        [ap(1, "Eva", "Klar", "1980-02-02"), ap(2, "Eva", "Klar")],  # 2: no birth date recorded
    )
    assert [(x.espo_id, x.betnr) for x in report.linked_by_identity] == [("e1", 1)]
    assert report.advo_only == []  # 2 might be a duplicate of the linked person: reported, not created
    assert report.ambiguous[0].espo_ids == [] and 2 in report.ambiguous[0].betnrs


def test_candidate_already_linked_by_betnr_is_ambiguous() -> None:
    report = match_records(
        [ep("e1", "Eva", "Klar", "1980-02-02", betnr=1), ep("e2", "Eva", "Klar", "1980-02-02")],
        [ap(1, "Eva", "Klar", "1980-02-02")],
    )
    assert [x.espo_id for x in report.linked_by_betnr] == ["e1"]
    assert report.espo_only == []  # e2 is likely a duplicate within EspoCRM: not copied to Advoware
    assert report.ambiguous[0].espo_ids == ["e2"]
    assert "candidate already linked" in report.ambiguous[0].reasons[0]


def test_duplicates_within_one_system_are_not_copied_twice() -> None:
    report = match_records(
        [ep("e1", "Tom", "Twice", "1990-01-01"), ep("e2", "Tom", "Twice", "1990-01-01")],
        [ap(1, "Ann", "Twice", "1990-01-01"), ap(2, "Ann", "Twice", "1990-01-01")],
    )
    assert report.espo_only == [] and report.advo_only == []
    reasons = {r for a in report.ambiguous for r in a.reasons}
    assert any("duplicate within EspoCRM" in r for r in reasons)
    assert any("duplicate within Advoware" in r for r in reasons)


def test_matching_scales_linearly() -> None:
    """10,000 records per side, all linked by identity: bucketed, no pairwise comparison."""
    import time

    espo = [ep(f"e{i}", "Vor", f"Name{i:05d}", "1970-01-01") for i in range(10_000)]
    advo = [ap(i, "Vor", f"Name{i:05d}", "1970-01-01") for i in range(10_000)]
    start = time.process_time()  # CPU time: the bound holds however busy the machine is
    report = match_records(espo, advo)
    assert len(report.linked_by_identity) == 10_000
    assert time.process_time() - start < 15


# --------------------------------------------------------------------------- the runner (fakes)


class Espo(FakeEspo):
    """FakeEspo (its `create` serves --create-in-espocrm); every write is recorded."""


WRITES = ("update", "create", "notify")


def espo_writes(espo: FakeEspo) -> int:
    return sum(espo.calls[k] for k in WRITES)


def advo_writes(advo: FakeAdvo) -> int:
    return advo.calls["create"] + advo.calls["update"]


def person_espo(first: str, last: str, born: str | None, address: str, **extra: Any) -> dict[str, Any]:
    return {
        "beteiligterTyp": "Person",
        "salutationName": "Mr.",
        "firstName": first,
        "lastName": last,
        "name": f"{first} {last}",
        "geburtsdatum": born,
        "emailAddress": address,
        "emailAddressData": [espo_email(address)],
        "phoneNumberData": [],
        **extra,
    }


def person_advo(first: str, last: str, born: str | None, address: str) -> dict[str, Any]:
    return {
        "anrede": "Herr",
        "vorname": first,
        "name": last,
        "geburtsdatum": born,
        "kommunikation": [{"kommKz": 8, "tlf": address, "bemerkung": None, "online": False}],
    }


@dataclass
class BackfillWorld(World):
    """The unit tests' world with the records of each case (`ids`: case -> EspoCRM ids / betnrs)."""

    ids: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def world() -> BackfillWorld:
    """Pairs by betnr (synced and never synced), an identity pair, EspoCRM-only, Advoware-only
    and an ambiguous case."""
    clock = Clock()
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    espo, advo = Espo(clock), FakeAdvo(clock)
    ids: dict[str, Any] = {}
    # A pair linked by betnr that differs in one field (Advoware has a title).
    b = advo.add({**person_advo("Anna", "Alt", "1960-01-01", "anna@example.org"), "titel": "Dr."})
    ids["by_betnr"] = espo.add(
        person_espo("Anna", "Alt", "1960-01-01", "anna@example.org", betnr=b, syncStatus="clean")
    )
    ids["by_betnr_nr"] = b
    # The same pair in another spelling, without betnr: identity.
    b = advo.add(person_advo("Jürgen", "Müller", "1970-03-01", "j.mueller@example.org"))
    ids["identity"] = espo.add(person_espo("Juergen", "Mueller", "1970-03-01", "j.mueller@example.org"))
    ids["identity_nr"] = b
    # Only in EspoCRM: to create.
    ids["espo_only"] = [
        espo.add(person_espo("Neu", f"Anlage{i}", f"199{i}-01-01", f"neu{i}@example.org")) for i in range(3)
    ]
    # Only in Advoware.
    ids["advo_only"] = advo.add(person_advo("Nur", "Advoware", "1950-05-05", "nur@example.org"))
    # Ambiguous: one EspoCRM record, two Advoware records of that name, no birth date anywhere.
    ids["ambiguous"] = espo.add(person_espo("Eva", "Zwilling", None, "eva1@example.org"))
    ids["ambiguous_nrs"] = [
        advo.add(person_advo("Eva", "Zwilling", None, "eva2@example.org")),
        advo.add(person_advo("Eva", "Zwilling", None, "eva3@example.org")),
    ]
    rt = fake_runtime(espo, advo, redis, clock, ESPOCRM_NOTIFY_USER_ID="u1")
    return BackfillWorld(clock, redis, espo, advo, rt, ids)


def backfill(w: BackfillWorld, **options: Any) -> Backfill:
    return w.rt.backfill(BackfillOptions(**options), no_progress)


async def redis_dump(redis: Any) -> dict[str, Any]:
    out = {}
    for k in sorted(await redis.keys("*")):
        t = await redis.type(k)
        out[k] = (t, await redis.get(k) if t == "string" else await redis.hgetall(k) if t == "hash" else None)
    return out


def advo_identity_counts(advo: FakeAdvo) -> Counter[Any]:
    return Counter(identity_of_advo(r) for r in advo.records.values())


async def test_dry_run_plans_everything_and_writes_nothing(world: BackfillWorld) -> None:
    w, ids = world, world.ids
    espo_before, advo_before = copy.deepcopy(w.espo.records), copy.deepcopy(w.advo.records)
    redis_before = await redis_dump(w.redis)
    result = await backfill(w).run(dry_run=True)
    # Nothing written anywhere: only reads on both APIs, Redis untouched.
    assert espo_writes(w.espo) == 0 and advo_writes(w.advo) == 0
    assert set(w.espo.calls) <= {"get", "get_app_user", "list"} and set(w.advo.calls) <= {"get", "list"}
    assert w.espo.records == espo_before and w.advo.records == advo_before
    assert await redis_dump(w.redis) == redis_before
    c = result.plan.counts()
    assert c["linked_by_betnr"] == 1 and c["linked_by_identity"] == 1
    assert c["to_create_in_advoware"] == 3 and c["advo_only"] == 1 and c["ambiguous"] == 1
    assert c["to_hold"] == 1 and c["conflicts"] == 0
    # Field-level plan for the pairs: the betnr pair lacks its title in EspoCRM (no snapshot:
    # the first sync fills the gap from Advoware, it never blanks Advoware's title).
    plans = {p.espo_id: p for p in result.plan.updates}
    assert plans[ids["by_betnr"]].to_espo == ["title"] and plans[ids["by_betnr"]].conflicts == []
    # The identity pair is spelled differently (Juergen Mueller / Jürgen Müller): the same party,
    # but different data - never synced, so the first sync writes EspoCRM's spelling (and says so).
    assert plans[ids["identity"]].to_advo == ["first_name", "last_name"]
    assert plans[ids["identity"]].basis == "first_sync"
    assert result.to_dict()["espo_only"] == sorted(ids["espo_only"])


async def test_run_links_creates_holds_and_reports(world: BackfillWorld) -> None:
    w, ids = world, world.ids
    before = advo_identity_counts(w.advo)
    result = await backfill(w).run()
    assert result.finished and not result.failures
    espo, advo = w.espo.records, w.advo.records
    # Identity pair: betnr written, content reconciled, snapshot stored.
    assert (
        espo[ids["identity"]]["betnr"] == ids["identity_nr"]
        and espo[ids["identity"]]["syncStatus"] == "clean"
    )
    assert await SnapshotStore(w.redis).get(ids["identity"]) is not None
    # EspoCRM-only: created once each, linked.
    assert w.advo.calls["create"] == 3
    for rid in ids["espo_only"]:
        assert espo[rid]["betnr"] in advo and espo[rid]["syncStatus"] == "clean"
    # Ambiguous: held as conflict with a reason for staff, nothing created or linked.
    amb = espo[ids["ambiguous"]]
    assert amb["syncStatus"] == "conflict" and amb.get("betnr") is None
    assert amb["syncErrorMessage"].startswith(PARK_PREFIX)
    assert all(str(n) in amb["syncErrorMessage"] for n in ids["ambiguous_nrs"])
    # Advoware-only: reported, not created in EspoCRM.
    assert result.plan.report.advo_only == [ids["advo_only"]]
    assert not any(r.get("betnr") == ids["advo_only"] for r in espo.values())
    # No identity has more Advoware records than before, except the three created ones.
    after = advo_identity_counts(w.advo)
    grown = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert sorted(grown.values()) == [1, 1, 1]
    # Run state, lock released, watermark seeded for the sweep.
    state = json.loads(await w.redis.get(RUN_STATE))
    assert state["status"] == "finished" and state["run_id"] == result.run_id
    assert not await w.redis.exists(BACKFILL_RUNNING)
    assert result.watermark_seeded and await w.redis.get(keys.WATERMARK_ADVOWARE)


async def test_second_run_does_nothing(world: BackfillWorld) -> None:
    w = world
    await backfill(w).run()
    e_before, a_before = espo_writes(w.espo), advo_writes(w.advo)
    result = await backfill(w).run()
    assert result.finished and not result.resumed
    assert result.plan.actions == []
    assert espo_writes(w.espo) == e_before and advo_writes(w.advo) == a_before


async def test_interrupted_run_resumes_without_duplicates(world: BackfillWorld) -> None:
    w, ids = world, world.ids
    before = advo_identity_counts(w.advo)
    # The 2nd create crashes the run (not an API error: nothing handles it).
    w.advo.fail_next["create"] = [None, RuntimeError("worker killed")]  # type: ignore[list-item]  # None: this call passes
    original = w.advo._maybe_fail

    def maybe_fail(op: str) -> None:
        queue = w.advo.fail_next.get(op)
        if queue:
            exc = queue.pop(0)
            if exc is not None:
                raise exc

    w.advo._maybe_fail = maybe_fail  # type: ignore[method-assign]  # a fake patched for this test
    with pytest.raises(BackfillAbortedError):
        await backfill(w, concurrency=1).run()
    w.advo._maybe_fail = original  # type: ignore[method-assign]
    state = json.loads(await w.redis.get(RUN_STATE))
    assert state["status"] == "interrupted" and state["done"] >= 3  # hold, link, sync, 1st create
    assert not await w.redis.exists(BACKFILL_RUNNING)

    result = await backfill(w, concurrency=1).run()
    assert result.resumed and result.run_id == state["run_id"] and result.finished
    creates = [r for r in w.advo.records.values() if r["name"].startswith("Anlage")]
    assert len(creates) == 3  # each EspoCRM-only record exactly once
    after = advo_identity_counts(w.advo)
    assert all(after[k] - before.get(k, 0) <= 1 for k in after)
    for rid in ids["espo_only"]:
        assert w.espo.records[rid]["betnr"] is not None


async def test_lost_create_answer_is_linked_not_created_again(world: BackfillWorld) -> None:
    """Advoware stored the record but the answer never came (crash): the rerun links it."""
    w, ids = world, world.ids
    w.advo.lose_create_answer = RuntimeError("connection reset after POST")
    with pytest.raises(BackfillAbortedError):
        await backfill(w, concurrency=1).run()
    lost = [r for r in w.advo.records.values() if r["name"].startswith("Anlage")]
    assert lost  # stored in Advoware, but EspoCRM never heard of it
    result = await backfill(w, concurrency=1).run()
    assert result.finished
    creates = [r for r in w.advo.records.values() if r["name"].startswith("Anlage")]
    assert len(creates) == 3
    assert {w.espo.records[r]["betnr"] for r in ids["espo_only"]} == {r["betNr"] for r in creates}


async def test_failures_are_reported_and_retried_by_the_rerun(world: BackfillWorld) -> None:
    from services.errors import UnavailableError

    w = world
    w.advo.fail_next["create"] = [UnavailableError("down", system="advoware", status_code=503)]
    result = await backfill(w, concurrency=1).run()
    assert not result.finished and len(result.failures) == 1
    assert json.loads(await w.redis.get(RUN_STATE))["status"] == "finished_with_failures"
    rerun = await backfill(w, concurrency=1).run()
    assert rerun.finished and w.advo.calls["create"] == 4  # 3 + the failed attempt
    assert len([r for r in w.advo.records.values() if r["name"].startswith("Anlage")]) == 3


async def test_a_system_that_is_down_aborts_the_run(world: BackfillWorld) -> None:
    from services.errors import UnavailableError

    w = world
    w.advo.fail_next["create"] = [UnavailableError("down", system="advoware", status_code=503)] * 3
    with pytest.raises(BackfillAbortedError, match="in a row"):
        await backfill(w, concurrency=1, max_consecutive_failures=2).run()


async def test_create_in_espocrm_carries_the_betnr_and_is_not_repeated(world: BackfillWorld) -> None:
    w, ids = world, world.ids
    result = await backfill(w, create_in_espocrm=True).run()
    assert result.finished and len(result.created_in_espocrm) == 1
    created = [r for r in w.espo.records.values() if r.get("betnr") == ids["advo_only"]]
    assert len(created) == 1 and created[0]["syncStatus"] == "clean" and created[0]["lastName"] == "Advoware"
    assert not mapper.diff(mapper.from_espo(created[0]), mapper.from_advo(w.advo.records[ids["advo_only"]]))
    again = await backfill(w, create_in_espocrm=True).run()
    assert again.created_in_espocrm == [] and w.espo.calls["create"] == 1


async def test_only_one_backfill_at_a_time(world: BackfillWorld) -> None:
    w = world
    await w.redis.set(BACKFILL_RUNNING, json.dumps({"token": "x", "host": "elsewhere", "pid": 1}))
    with pytest.raises(BackfillBusyError):
        await backfill(w).run()
    # A lock left by a dead process on this host is taken over.
    import socket

    await w.redis.set(
        BACKFILL_RUNNING, json.dumps({"token": "x", "host": socket.gethostname(), "pid": 2**22 + 7})
    )
    assert (await backfill(w).run()).finished


# --------------------------------------------------------------------------- engine guards


async def test_creates_wait_while_a_backfill_runs(world: BackfillWorld) -> None:
    w, ids = world, world.ids
    await w.redis.set(BACKFILL_RUNNING, "{}")
    out = await w.engine.sync_record(ids["espo_only"][0], Trigger.WEBHOOK_CREATE)
    assert out.result is Result.SKIPPED and w.advo.calls["create"] == 0
    assert w.espo.records[ids["espo_only"][0]]["syncStatus"] == "pending_sync"  # the sweep retries
    await w.redis.delete(BACKFILL_RUNNING)
    out = await w.engine.sync_record(ids["espo_only"][0], Trigger.SWEEP)
    assert out.result is Result.CREATED


async def test_held_records_are_released_only_by_a_person_or_an_operator(world: BackfillWorld) -> None:
    w, ids = world, world.ids
    await backfill(w).run()
    rid = ids["ambiguous"]
    for trigger in (Trigger.WEBHOOK_UPDATE, Trigger.SWEEP, Trigger.DAILY_CHECK):
        out = await w.engine.sync_record(rid, trigger)
        assert out.result is Result.SKIPPED, trigger
    # A person links it to one of the candidates: the next sync reconciles that pair.
    w.espo.edit(rid, betnr=ids["ambiguous_nrs"][1])
    out = await w.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result in (Result.UPDATED, Result.UNCHANGED) and w.espo.records[rid]["syncStatus"] == "clean"


async def test_operator_sync_creates_a_held_record_anyway(world: BackfillWorld) -> None:
    w, ids = world, world.ids
    await backfill(w).run()
    creates = w.advo.calls["create"]
    out = await w.engine.sync_record(ids["ambiguous"], Trigger.MANUAL)
    assert out.result is Result.CREATED and w.advo.calls["create"] == creates + 1


async def test_a_rerun_releases_a_hold_that_is_no_longer_ambiguous(world: BackfillWorld) -> None:
    w, ids = world, world.ids
    await backfill(w).run()
    for b in ids["ambiguous_nrs"]:  # a person merged the Advoware duplicates away
        w.advo.records.pop(b)
    result = await backfill(w).run()
    assert ids["ambiguous"] in result.plan.report.espo_only
    assert w.espo.records[ids["ambiguous"]]["syncStatus"] == "clean"
    assert w.espo.records[ids["ambiguous"]]["betnr"] in w.advo.records


async def test_records_locked_by_a_crashed_attempt_are_waited_for(world: BackfillWorld) -> None:
    w, ids = world, world.ids
    w.engine.locks.ttl_ms = 600  # a short record-lock TTL for the test
    from services.sync.lock import RecordLocks

    assert await RecordLocks(w.redis, 0.6).acquire(ids["espo_only"][0])  # its holder died
    result = await backfill(w).run()
    assert result.finished and not result.failures
    assert w.espo.records[ids["espo_only"][0]]["betnr"] in w.advo.records
    assert w.advo.calls["create"] == 3
