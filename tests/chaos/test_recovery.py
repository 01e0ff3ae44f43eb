"""Crash and lost-answer recovery, one case at a time (deterministic companions of the
seeded scenario in test_convergence.py, on the same two-instance cluster, their own records).

- A create whose answer is lost (the POST times out but Advoware applied it), and the record
  is edited in EspoCRM before the retry: exactly one Advoware record, carrying the edit.
- A create that Advoware answered, but the worker died before writing `betnr` back, and the
  record is edited before the retry: the retry links that record and writes the edit to it.
- A worker killed in the middle of a sync: its lock expires, the record left `syncing` is
  picked up by the sweep, the edit arrives; nothing else needed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis

from services.beteiligte import mapper
from services.store import keys
from tests.chaos.harness import Probe
from tests.chaos.people import People, clear_faults, service_faults, set_faults
from tests.support.stack import Stack, wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]


@pytest.fixture(scope="module")
def people(chaos_stack: Stack) -> Iterator[People]:
    with closing(People(chaos_stack.espo_url, chaos_stack.advo_url)) as p:
        yield p


@pytest.fixture(scope="module")
def probe(chaos_stack: Stack) -> Probe:
    return Probe(chaos_stack)


def person(last: str) -> dict[str, Any]:
    return {
        "beteiligterTyp": "Person",
        "salutationName": "Mr.",
        "firstName": "Konrad",
        "lastName": last,
        "emailAddressData": [{"emailAddress": f"{last.lower()}@example.de", "primary": True}],
    }


def linked_person(people: People, probe: Probe, last: str) -> tuple[str, int]:
    """A new person in EspoCRM, synced (clean, linked) with all its events run: (id, betnr)."""
    rid = people.espo_create(person(last))
    wait_until(lambda: people.espo_record(rid)["syncStatus"] == "clean", timeout=30, message="linked")
    betnr = people.espo_record(rid)["betnr"]
    probe.wait_quiet()
    return rid, betnr


def copies(people: People, marker: str) -> list[dict[str, Any]]:
    return [r for r in people.advo_records().values() if marker in str(r.get("name"))]


def test_lost_create_answer_then_edit_makes_no_duplicate(
    chaos_stack: Stack, people: People, probe: Probe
) -> None:
    set_faults(
        chaos_stack.advo_url,
        service_faults(
            "advo",
            {
                "kind": "timeout",
                "sleep_s": 3,
                "next_n": 1,
                "match": {"method": "POST", "path": "Beteiligte$"},
            },
        ),
    )
    rid = people.espo_create(person("Verlorenantwort"))
    wait_until(lambda: people.espo_record(rid)["syncStatus"] == "failed", timeout=30, message="create failed")
    wait_until(lambda: copies(people, "Verlorenantwort"), timeout=10, message="the POST applied late")
    clear_faults(chaos_stack.advo_url)
    people.espo_edit(rid, {"lastName": "Verlorenantwort-Neu"})
    wait_until(
        lambda: (r := people.espo_record(rid))["syncStatus"] == "clean" and r.get("betnr"),
        timeout=30,
        message="linked",
    )
    probe.wait_quiet()
    found = copies(people, "Verlorenantwort")
    assert [r["name"] for r in found] == ["Verlorenantwort-Neu"], found
    assert found[0]["betNr"] == people.espo_record(rid)["betnr"]


def test_create_answered_but_betnr_not_written_back_then_edit(
    chaos_stack: Stack, people: People, probe: Probe
) -> None:
    """What a worker killed right after Advoware answered the POST leaves behind: the Advoware
    record, and the create intent with its betNr; EspoCRM never got the betnr."""
    settings = f"{chaos_stack.espo_url}/__sandbox/webhooks/settings"
    httpx.post(settings, json={"paused": True}, timeout=30).raise_for_status()
    try:
        rid = people.espo_create(person("Rueckschrieb"))
        content = mapper.from_espo(people.espo_record(rid))
        created = people.advo_call("POST", None, json=mapper.to_advo_payload(content, None)).json()
        r = redis.Redis.from_url(chaos_stack.redis_url, decode_responses=True)
        r.set(
            keys.create_intent(rid),
            json.dumps(
                {
                    "espo_id": rid,
                    "started_at": datetime.now(UTC).isoformat(),
                    "betnr": created["betNr"],
                    "content_hash": mapper.content_hash(content),
                }
            ),
        )
        people.espo_edit(rid, {"firstName": "Konstantin"})
    finally:
        httpx.post(settings, json={"paused": False}, timeout=30).raise_for_status()
    wait_until(
        lambda: (rec := people.espo_record(rid))["syncStatus"] == "clean" and rec.get("betnr"),
        timeout=30,
        message="linked",
    )
    probe.wait_quiet()
    probe.sweep()
    probe.wait_quiet()
    found = copies(people, "Rueckschrieb")
    assert len(found) == 1 and found[0]["betNr"] == created["betNr"], found
    assert found[0]["vorname"] == "Konstantin", "the edit made before the retry was lost"
    assert people.espo_record(rid)["firstName"] == "Konstantin"


def test_killed_worker_recovers_via_stale_lock_and_sweep(
    chaos_stack: Stack, people: People, probe: Probe
) -> None:
    rid, betnr = linked_person(people, probe, "Abgestuerzt")
    set_faults(
        chaos_stack.advo_url,
        service_faults(
            "advo", {"kind": "latency", "latency_ms": 2500, "next_n": 1, "match": {"method": "GET"}}
        ),
    )
    people.espo_edit(rid, {"titel": "Dr. Absturz"})
    lock = keys.record_lock(rid)
    kill = probe.kill_sync_worker(
        {rid}, min_age=1.0, timeout=20, ready=lambda: bool(probe.redis.exists(lock))
    )
    assert kill is not None, "no sync worker to kill"
    clear_faults(chaos_stack.advo_url)
    # Right after the kill: the lock is held by nobody alive; the record is not synced.
    assert probe.redis.exists(lock)
    assert people.advo_records()[betnr].get("titel") != "Dr. Absturz"
    probe.wait_quiet()
    time.sleep(1)
    # No further event for this record: only the sweep can bring the edit across.
    deadline = time.monotonic() + 60
    while people.advo_records()[betnr].get("titel") != "Dr. Absturz":
        assert time.monotonic() < deadline, people.espo_record(rid)
        probe.sweep()
        probe.wait_quiet()
        time.sleep(1)
    assert people.espo_record(rid)["syncStatus"] == "clean"
    assert not probe.redis.exists(keys.record_lock(rid))


def test_conflict_is_reported_when_the_winning_write_was_applied_but_its_answer_lost(
    chaos_stack: Stack, people: People, probe: Probe
) -> None:
    """Both sides change the same field; the service writes EspoCRM's value to Advoware, the PUT
    is applied but times out, the retries fail: the sync counts as failed. The next run finds
    both sides equal - and must still tell a person which Advoware value was overwritten."""
    rid, betnr = linked_person(people, probe, "Konfliktverlust")
    set_faults(
        chaos_stack.advo_url,
        service_faults("advo", {"kind": "timeout", "sleep_s": 3, "next_n": 1, "match": {"method": "PUT"}})
        + service_faults("advo", {"kind": "500", "next_n": 3, "match": {"method": "PUT"}}),
    )
    people.advo_edit(betnr, {"titel": "Dr. Advoseite"})
    people.espo_edit(rid, {"titel": "Dr. Espocrmseite"})
    wait_until(lambda: people.espo_record(rid)["syncStatus"] == "failed", timeout=30, message="sync failed")
    wait_until(
        lambda: people.advo_records()[betnr].get("titel") == "Dr. Espocrmseite",
        timeout=10,
        message="the timed-out PUT applied late",
    )
    clear_faults(chaos_stack.advo_url)
    time.sleep(1.5)  # the failed record's back-off (SYNC_RETRY_BASE_SECONDS=1)
    probe.sweep()
    probe.wait_quiet()
    wait_until(lambda: people.espo_record(rid)["syncStatus"] == "clean", timeout=30, message="clean")
    text = mapper.describe_value("title", "Dr. Advoseite")
    assert any(n.get("id") == rid and text in (n.get("message") or "") for n in probe.notifications()), (
        "no notification names the overwritten Advoware value"
    )
    assert not probe.redis.exists(keys.pending_conflicts(rid))
