"""End to end, link integrity (issue 13): one party, one Advoware record - never duplicated, never
blanked, always relinkable. Real Motia, real Redis, the simulators; the shared e2e stack with fresh
data for the module, the cron sweep held off (sweeps run when a test asks). Each test makes its own
parties (unique names), so the tests do not depend on each other.
"""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any

import httpx
import pytest
import redis

from sandbox.act import Actor
from services.store import keys
from tests.support.stack import Stack, wait_until
from tests.support.sweep_cost import ADMIN, hold_cron, log_seq, ops, service_calls, sweep, wait_quiet

pytestmark = pytest.mark.e2e
_n = itertools.count(1)


@pytest.fixture(scope="module")
def stack(module_stack: Stack) -> Stack:
    hold_cron(module_stack)
    sweep(module_stack)  # the demo's pending records are created; the identity index is built
    wait_quiet(module_stack)
    return module_stack


@pytest.fixture(scope="module")
def actor(stack: Stack) -> Actor:
    return Actor(stack.espo_url, stack.advo_url)


# --------------------------------------------------------------------------- helpers


def unique(prefix: str) -> str:
    return f"{prefix}{next(_n)}{uuid.uuid4().hex[:4]}"


def advo_person(actor: Actor, first: str, last: str, **extra: Any) -> int:
    body = {
        "rechtsform": None,
        "anrede": "Herr",
        "vorname": first,
        "name": last,
        "kommunikation": [],
        **extra,
    }
    return int(actor.advo_call("POST", "Beteiligte", json=body).json()["betNr"])


def advo_company(actor: Actor, name: str, form: str, register: str, court: str) -> int:
    body = {
        "rechtsform": form,
        "anrede": "Firma",
        "name": name,
        "handelsRegisterNummer": register,
        "registergericht": court,
        "kommunikation": [],
    }
    return int(actor.advo_call("POST", "Beteiligte", json=body).json()["betNr"])


def advo_get(actor: Actor, betnr: int) -> dict[str, Any]:
    return dict(actor.advo_call("GET", f"Beteiligte/{betnr}").json())


def advo_named(actor: Actor, name: str) -> list[int]:
    """betNrs of the Advoware parties whose name contains `name` (a test's unique stem)."""
    rows = actor.advo_call("GET", "Beteiligte", params={"take": 100}).json()
    out, skip = [], 0
    while rows:
        out += [int(r["betNr"]) for r in rows if name in str(r.get("name"))]
        skip += len(rows)
        rows = (
            actor.advo_call("GET", "Beteiligte", params={"take": 100, "skip": skip}).json()
            if len(rows) == 100
            else []
        )
    return out


def espo_create(actor: Actor, body: dict[str, Any]) -> str:
    resp = actor.espo.post("CBeteiligte", json=body, headers={"X-Skip-Duplicate-Check": "true"})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["id"])


def espo_person(actor: Actor, first: str, last: str, **extra: Any) -> str:
    return espo_create(actor, {"beteiligterTyp": "Person", "firstName": first, "lastName": last, **extra})


def espo_get(actor: Actor, rid: str) -> dict[str, Any]:
    resp = actor.espo.get(f"CBeteiligte/{rid}")
    resp.raise_for_status()
    return dict(resp.json())


def espo_put(actor: Actor, rid: str, data: dict[str, Any]) -> None:
    actor.espo.put(f"CBeteiligte/{rid}", json=data).raise_for_status()


def settled(actor: Actor, rid: str, status: str = "clean", timeout: float = 60) -> dict[str, Any]:
    return wait_until(
        lambda: (r := espo_get(actor, rid)).get("syncStatus") == status and r,
        timeout=timeout,
        message=f"record {rid} {status}",
    )


def pause_webhooks(stack: Stack, paused: bool) -> None:
    httpx.post(
        f"{stack.espo_url}/__sandbox/webhooks/settings", json={"paused": paused}, timeout=30
    ).raise_for_status()


def notes_about(stack: Stack, rid: str) -> list[str]:
    data = httpx.get(f"{stack.espo_url}/__sandbox/notes", timeout=30).json()
    items = data.get("notes", []) + data.get("notifications", [])
    return [str(n.get("post") or n.get("message") or n) for n in items if rid in str(n)]


def advo_writes_since(stack: Stack, mark: int) -> list[str]:
    return [
        f"{c['method']} {c['path']}"
        for c in service_calls(stack.advo_url, mark)
        if c["method"] in ("POST", "PUT")
    ]


def forget_identity_index(stack: Stack) -> None:
    """As after a first start (or a Redis that lost the index): no index, no build state."""
    r = redis.Redis.from_url(stack.redis_url)
    try:
        r.delete(keys.IDENTITY_STATE, keys.IDENTITY_ENTRIES, *list(r.scan_iter(keys.identity_lookup("*"))))
    finally:
        r.close()


def sync_now(stack: Stack, rid: str) -> dict[str, Any]:
    resp = httpx.post(
        f"{stack.motia_url}/vmh/beteiligte/sync/record", headers=ADMIN, json={"id": rid}, timeout=120
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


# --------------------------------------------------------------------------- parties on both sides


def both_sides(actor: Actor) -> tuple[dict[str, int], dict[str, str], dict[str, str]]:
    """The same person and the same company in both systems, not linked (as before day one)."""
    last, company = unique("Brenner"), unique("Isarwerk")
    betnrs = {
        "person": advo_person(actor, "Jürgen", last, geburtsdatum="1961-04-02", titel="Dr."),
        "company": advo_company(
            actor, f"{company} GmbH", "GmbH", "HRB 12345 B", "Amtsgericht Charlottenburg"
        ),
    }
    ids = {
        "person": espo_person(actor, "Juergen", last, geburtsdatum="1961-04-02"),
        "company": espo_create(
            actor,
            {
                "beteiligterTyp": "Firma",
                "name": company,
                "rechtsform": "GmbH",
                "handelsregisterNummer": "HRB 12345",
                "registergericht": "AG Charlottenburg",
            },
        ),
    }
    return betnrs, ids, {"person": last, "company": company}


def assert_one_record_each(
    actor: Actor, betnrs: dict[str, int], ids: dict[str, str], names: dict[str, str]
) -> None:
    for kind in ("person", "company"):
        record = settled(actor, ids[kind])
        assert record["betnr"] == betnrs[kind], kind
        assert advo_named(actor, names[kind]) == [betnrs[kind]], f"a second Advoware {kind}"


def test_existing_parties_on_day_one_without_backfill_are_linked_not_duplicated(
    stack: Stack, actor: Actor
) -> None:
    pause_webhooks(stack, True)  # the records exist before the service looks
    try:
        betnrs, ids, names = both_sides(actor)
    finally:
        pause_webhooks(stack, False)
    forget_identity_index(stack)  # the service's first start: no index yet
    mark = log_seq(stack.advo_url)
    sweep(stack)  # builds the index, then syncs the pending records
    wait_quiet(stack)
    assert_one_record_each(actor, betnrs, ids, names)
    assert not [w for w in advo_writes_since(stack, mark) if w.startswith("POST")], "nothing created"
    # The person's EspoCRM spelling and Advoware's title: nothing was lost on the first sync.
    assert espo_get(actor, ids["person"])["titel"] == "Dr."


def test_existing_parties_with_a_backfill_first_are_linked_once(stack: Stack, actor: Actor) -> None:
    pause_webhooks(stack, True)
    try:
        betnrs, ids, names = both_sides(actor)
        done = ops(stack, "--json", "backfill")
        assert done.returncode in (0, 1), done.stderr
    finally:
        pause_webhooks(stack, False)
    sweep(stack)
    wait_quiet(stack)
    assert_one_record_each(actor, betnrs, ids, names)


def test_a_person_creating_an_existing_client_in_espocrm_gets_no_second_advoware_record(
    stack: Stack, actor: Actor
) -> None:
    last = unique("Kowalski")
    betnr = advo_person(actor, "Anna", last, geburtsdatum="1988-08-08")
    mark = log_seq(stack.advo_url)
    rid = espo_person(actor, "Anna", last, geburtsdatum="1988-08-08")  # the webhook fires
    record = wait_until(lambda: (r := espo_get(actor, rid)).get("betnr") and r, timeout=60, message="linked")
    assert record["betnr"] == betnr
    assert advo_named(actor, last) == [betnr]
    assert not [w for w in advo_writes_since(stack, mark) if w.startswith("POST")]


def test_an_ambiguous_create_is_held_with_the_candidates_named(stack: Stack, actor: Actor) -> None:
    last = unique("Schuster")
    first, second = (
        advo_person(actor, "Max", last),
        advo_person(actor, "Max", last, geburtsdatum="1970-01-01"),
    )
    mark = log_seq(stack.advo_url)
    rid = espo_person(actor, "Max", last)
    held = settled(actor, rid, "conflict")
    assert (
        held["betnr"] is None
        and str(first) in held["syncErrorMessage"]
        and str(second) in held["syncErrorMessage"]
    )
    assert advo_writes_since(stack, mark) == []
    assert notes_about(stack, rid), "a note tells a person"
    status = json.loads(ops(stack, "--json", "status").stdout)
    assert rid in [e["id"] for e in status["recent_held"]] and status["counts"]["conflict"] >= 1


def test_a_copied_betnr_changes_nothing_in_advoware_and_is_reported_on_both(
    stack: Stack, actor: Actor
) -> None:
    last = unique("Vogel")
    original = espo_person(actor, "Ida", last, geburtsdatum="1975-05-05")
    betnr = int(settled(actor, original)["betnr"])
    before = advo_get(actor, betnr)
    mark = log_seq(stack.advo_url)
    # EspoCRM's "Duplicate" action: another person's data with the same betnr.
    copy = espo_person(actor, "Otto", unique("Fremd"), betnr=betnr, titel="Prof.")
    held = settled(actor, copy, "conflict")
    assert str(betnr) in held["syncErrorMessage"] and original in held["syncErrorMessage"]
    assert advo_writes_since(stack, mark) == [] and advo_get(actor, betnr) == before
    assert (
        espo_get(actor, original)["lastName"] == last and espo_get(actor, original)["syncStatus"] == "clean"
    )
    assert notes_about(stack, copy) and notes_about(stack, original)


def test_a_sparse_record_linked_to_a_rich_party_loses_no_advoware_value(stack: Stack, actor: Actor) -> None:
    last = unique("Reich")
    rich = {
        "titel": "Prof. Dr.",
        "anrede": "Frau",
        "geburtsdatum": "1950-02-02",
        "kommunikation": [
            {"kommKz": 4, "tlf": f"{last.lower()}@kanzlei.example", "bemerkung": None, "online": False},
            {"kommKz": 1, "tlf": "+49 89 55501", "bemerkung": None, "online": False},
        ],
    }
    betnr = advo_person(actor, "Clara", last, **rich)
    before = advo_get(actor, betnr)
    rid = espo_person(actor, "Clara", last, geburtsdatum="1950-02-02", betnr=betnr)  # a typed-in betnr
    record = settled(actor, rid)
    after = advo_get(actor, betnr)
    for name in ("titel", "anrede", "geburtsdatum", "vorname", "name"):
        assert after[name] == before[name], name
    assert {k["tlf"] for k in after["kommunikation"]} >= {k["tlf"] for k in before["kommunikation"]}
    assert record["titel"] == "Prof. Dr." and record["salutationName"] == "Mrs."
    assert record["emailAddress"] == f"{last.lower()}@kanzlei.example"


def test_relinking_from_deleted_in_advoware_syncs_with_the_new_party(stack: Stack, actor: Actor) -> None:
    last = unique("Merz")
    rid = espo_person(actor, "Lena", last, geburtsdatum="1990-09-09")
    old = int(settled(actor, rid)["betnr"])
    survivor = advo_person(actor, "Lena", last, geburtsdatum="1990-09-09", titel="Dr.")
    actor.advo_call("DELETE", f"Beteiligte/{old}")  # staff merged the two parties in Advoware
    sync_now(stack, rid)
    settled(actor, rid, "deleted_in_advoware")
    espo_put(actor, rid, {"betnr": survivor})  # as the notification says
    record = settled(actor, rid)
    assert record["betnr"] == survivor and record["titel"] == "Dr." and not record.get("syncErrorMessage")
    assert advo_get(actor, survivor)["geburtsdatum"] == "1990-09-09"


def test_ops_relink_moves_a_link_on_purpose(stack: Stack, actor: Actor) -> None:
    last = unique("Umzug")
    rid = espo_person(actor, "Jan", last, geburtsdatum="1980-03-03")
    settled(actor, rid)
    target = advo_person(actor, "Jan", last, geburtsdatum="1980-03-03", titel="Mag.")
    resp = httpx.post(
        f"{stack.motia_url}/vmh/beteiligte/sync/relink",
        headers=ADMIN,
        json={"id": rid, "betnr": target},
        timeout=120,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["result"] in ("updated", "unchanged")
    assert espo_get(actor, rid)["betnr"] == target and espo_get(actor, rid)["titel"] == "Mag."
    denied = httpx.post(
        f"{stack.motia_url}/vmh/beteiligte/sync/relink", json={"id": rid, "betnr": target}, timeout=30
    )
    assert denied.status_code == 401
    missing = httpx.post(
        f"{stack.motia_url}/vmh/beteiligte/sync/relink",
        headers=ADMIN,
        json={"id": rid, "betnr": 9_999_999},
        timeout=60,
    )
    assert missing.status_code == 404


def test_a_field_advoware_ignores_on_put_keeps_the_espocrm_value_and_is_reported(
    stack: Stack, actor: Actor
) -> None:
    last = unique("Stur")
    rid = espo_person(actor, "Eva", last, geburtsdatum="1985-06-06", titel="Dr.")
    betnr = int(settled(actor, rid)["betnr"])
    httpx.post(
        f"{stack.advo_url}/__sandbox/ignore-on-put", json={"fields": ["titel"]}, timeout=30
    ).raise_for_status()
    try:
        espo_put(actor, rid, {"titel": "Prof. Dr.", "lastName": last + "-Neu"})  # a person's edit
        record = wait_until(
            lambda: (r := espo_get(actor, rid)).get("syncErrorMessage") and r, timeout=60, message="reported"
        )
        assert "title" in record["syncErrorMessage"] and record["titel"] == "Prof. Dr."
        assert advo_get(actor, betnr)["titel"] == "Dr." and advo_get(actor, betnr)["name"] == last + "-Neu"
        sweep(stack)  # the Advoware poll sees the write's new geaendertAm
        wait_quiet(stack)
        assert espo_get(actor, rid)["titel"] == "Prof. Dr.", "the person's edit was not reverted"
        assert notes_about(stack, rid)
    finally:
        httpx.delete(f"{stack.advo_url}/__sandbox/ignore-on-put", timeout=30)
