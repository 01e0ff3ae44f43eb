"""End to end, creates (issue 20): a POST whose answer is lost never makes a second party (nor a
lost PUT answer a false conflict), and two EspoCRM records of one person - in one webhook batch,
or as two deliveries at the same moment - make one Advoware party, the second record held as a duplicate. Real Motia, real Redis, the
simulators (the Advoware simulator's `lost_answer` fault: the POST is carried out, the connection
closed without an answer). The shared e2e stack, fresh for the module, the cron sweep held off.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from sandbox.act import Actor
from sandbox.signing import webhook_signature
from tests.e2e.test_link_e2e import (
    advo_get,
    advo_named,
    espo_get,
    espo_person,
    espo_put,
    notes_about,
    pause_webhooks,
    settled,
    unique,
)
from tests.support.processes import PROJECT_ROOT
from tests.support.stack import Stack, read_dotenv, wait_until
from tests.support.sweep_cost import hold_cron, sweep, wait_quiet

pytestmark = pytest.mark.e2e
MOBILE = {"kommKz": 3, "tlf": "+49 171 5550100", "bemerkung": None, "online": False}


@pytest.fixture(scope="module")
def stack(module_stack: Stack) -> Stack:
    hold_cron(module_stack)
    sweep(module_stack)  # the demo's pending records are created; the identity index is built
    wait_quiet(module_stack)
    return module_stack


@pytest.fixture(scope="module")
def actor(stack: Stack) -> Actor:
    return Actor(stack.espo_url, stack.advo_url)


def advo_fault(stack: Stack, spec: dict[str, Any]) -> None:
    httpx.post(f"{stack.advo_url}/__sandbox/faults", json=spec, timeout=30).raise_for_status()


def clear_advo_faults(stack: Stack) -> None:
    httpx.delete(f"{stack.advo_url}/__sandbox/faults", timeout=30).raise_for_status()


def signed_batch(event: str, ids: list[str]) -> tuple[bytes, dict[str, str]]:
    """A webhook batch for these records, signed as EspoCRM signs it (sandbox/sandbox.env)."""
    secrets = dict(
        pair.split(":", 1)
        for pair in read_dotenv(PROJECT_ROOT / "sandbox" / "sandbox.env")["ESPOCRM_WEBHOOK_SECRETS"].split(
            ","
        )
    )
    webhook_id = next(i for i, s in secrets.items() if event in s)
    raw = json.dumps([{"id": i} for i in ids]).encode()
    headers = {
        "Content-Type": "application/json",
        "Signature": webhook_signature(webhook_id, secrets[webhook_id], raw),
    }
    return raw, headers


def test_a_lost_post_answer_then_edits_on_both_sides_make_one_party_and_keep_the_staff_edit(
    stack: Stack, actor: Actor
) -> None:
    last = unique("Verloren")
    advo_fault(stack, {"kind": "lost_answer", "match": {"method": "POST", "path": "Beteiligte$"}})
    try:
        rid = espo_person(actor, "Greta", last, geburtsdatum="1979-07-07", titel="Dr.")  # the webhook fires
        settled(actor, rid, "failed")  # Advoware created the party; the service never heard back
    finally:
        clear_advo_faults(stack)
    (betnr,) = advo_named(actor, last)
    # Staff complete the new party in Advoware: a title and a mobile number. (A person looks at
    # the new party first: its change stamp, to the second, is no longer its creation stamp.)
    time.sleep(1.1)
    party = advo_get(actor, betnr)
    for read_only in ("betNr", "geaendertAm", "angelegtAm"):
        party.pop(read_only, None)
    party["titel"] = "Prof. Dr."
    party["kommunikation"] = [*party.get("kommunikation", []), MOBILE]
    actor.advo_call("PUT", f"Beteiligte/{betnr}", json=party)
    # A person edits the CRM record (the webhook fires; the record is retried at once).
    espo_put(
        actor, rid, {"emailAddressData": [{"emailAddress": f"{last.lower()}@example.de", "primary": True}]}
    )
    record = wait_until(
        lambda: (r := espo_get(actor, rid)).get("betnr") and r.get("syncStatus") == "clean" and r,
        timeout=90,
        message="linked",
    )
    wait_quiet(stack)
    assert advo_named(actor, last) == [betnr], "a second Advoware party"
    record, party = espo_get(actor, rid), advo_get(actor, betnr)
    assert record["betnr"] == betnr
    assert party["titel"] == "Prof. Dr." == record["titel"], "the staff edit was reverted"
    assert any(k["tlf"] == MOBILE["tlf"] for k in party["kommunikation"])
    assert "1715550100" in "".join(p["phoneNumber"] for p in record["phoneNumberData"]).replace(" ", "")
    assert any(k["tlf"] == f"{last.lower()}@example.de" for k in party["kommunikation"]), "the CRM edit"


def test_a_lost_put_answer_then_a_crm_edit_of_the_same_field_is_one_sided(stack: Stack, actor: Actor) -> None:
    """Advoware carries out the sync's PUT of a person's title but the answer never arrives; the
    person then edits the title again before the retry: their value arrives, and no conflict
    notice names their own earlier value as Advoware's (services/sync/in_doubt.py)."""
    last = unique("Antwortlos")
    rid = espo_person(actor, "Greta", last, titel="Dr.")
    betnr = wait_until(lambda: settled(actor, rid).get("betnr"), timeout=90, message="linked")
    # Every try of the PUT is carried out and unanswered (the client repeats an idempotent PUT).
    advo_fault(
        stack, {"kind": "lost_answer", "next_n": None, "match": {"method": "PUT", "path": "Beteiligte/"}}
    )
    try:
        espo_put(actor, rid, {"titel": "Prof."})
        settled(actor, rid, "failed")  # the service never heard back
    finally:
        clear_advo_faults(stack)
    assert advo_get(actor, betnr)["titel"] == "Prof."  # carried out all the same
    espo_put(actor, rid, {"titel": "Prof. Dr."})  # the webhook fires; the record is retried at once
    wait_until(
        lambda: advo_get(actor, betnr)["titel"] == "Prof. Dr." and settled(actor, rid),
        timeout=90,
        message="the second edit in Advoware",
    )
    wait_quiet(stack)
    assert espo_get(actor, rid)["titel"] == "Prof. Dr." == advo_get(actor, betnr)["titel"]
    assert not [n for n in notes_about(stack, rid) if "Konflikt" in n], notes_about(stack, rid)


def assert_one_party_and_one_held(stack: Stack, actor: Actor, last: str, first: str, second: str) -> None:
    def settled_both() -> Any:
        records = [espo_get(actor, first), espo_get(actor, second)]
        return all(r.get("syncStatus") in ("clean", "conflict") for r in records) and records

    records = wait_until(settled_both, timeout=120, message="both records settled")
    assert len(advo_named(actor, last)) == 1, "a second Advoware party"
    (betnr,) = advo_named(actor, last)
    statuses = sorted(r["syncStatus"] for r in records)
    assert statuses == ["clean", "conflict"], statuses
    linked = next(r for r in records if r["syncStatus"] == "clean")
    held = next(r for r in records if r["syncStatus"] == "conflict")
    assert linked["betnr"] == betnr and not held.get("betnr")
    assert linked["id"] in held["syncErrorMessage"] and str(betnr) in held["syncErrorMessage"]
    assert notes_about(stack, held["id"]), "a note tells a person"


@pytest.fixture
def slow_advoware_creates(stack: Stack) -> Iterator[None]:
    """Each POST takes 0.5 s: the window in which a second record's identity check would miss
    the first's party, wide open."""
    advo_fault(
        stack,
        {
            "kind": "latency",
            "latency_ms": 500,
            "next_n": None,
            "match": {"method": "POST", "path": "Beteiligte$"},
        },
    )
    try:
        yield
    finally:
        clear_advo_faults(stack)


@pytest.mark.usefixtures("slow_advoware_creates")
def test_two_records_of_one_person_in_one_webhook_batch_make_one_party(stack: Stack, actor: Actor) -> None:
    last = unique("Doppelt")
    pause_webhooks(stack, True)  # both creates go out as one batch
    try:
        first = espo_person(actor, "Hanna", last, geburtsdatum="1982-02-02")
        second = espo_person(actor, "Hanna", last, geburtsdatum="1982-02-02")
    finally:
        pause_webhooks(stack, False)
    assert_one_party_and_one_held(stack, actor, last, first, second)


@pytest.mark.usefixtures("slow_advoware_creates")
def test_two_simultaneous_deliveries_of_one_person_make_one_party(stack: Stack, actor: Actor) -> None:
    last = unique("Zugleich")
    pause_webhooks(stack, True)  # EspoCRM's own delivery waits; two deliveries arrive at once
    try:
        first = espo_person(actor, "Timo", last, geburtsdatum="1991-01-01")
        second = espo_person(actor, "Timo", last, geburtsdatum="1991-01-01")
        url = f"{stack.motia_url}/vmh/webhook/beteiligte/update"
        batches = [signed_batch("update", [first]), signed_batch("update", [second])]
        with ThreadPoolExecutor(2) as pool:
            answers = list(
                pool.map(lambda b: httpx.post(url, content=b[0], headers=b[1], timeout=60), batches)
            )
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        assert_one_party_and_one_held(stack, actor, last, first, second)
    finally:
        pause_webhooks(stack, False)
