"""Redis faults end to end (issue 16): the real Motia runtime, a real Redis that is stopped
and restarted empty, the sandbox simulators.

- Redis stopped: a signed webhook is answered 503 (EspoCRM retries it) and, once Redis is
  back, EspoCRM's retry brings the edit to Advoware: nothing lost.
- Redis restarted empty mid-run: no duplicate Advoware record, no lost edit on either side
  (snapshots, intents, watermarks, queued jobs and the token are all gone; the sweep and the
  no-snapshot rules rebuild what is needed).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox import config as cfg
from sandbox.act import Actor
from sandbox.signing import php_json, webhook_signature
from tests.e2e.test_sync_e2e import ADMIN, create_person, espo_get, sweep, wait_linked
from tests.support.stack import Stack, run_stack, wait_until
from tests.support.sweep_cost import edit_advoware

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own: these tests stop its Redis."""
    with run_stack(tmp_path_factory.mktemp("redis-faults")) as s:
        # Long enough between EspoCRM's 4 attempts that a few seconds of outage are covered.
        httpx.post(f"{s.espo_url}/__sandbox/webhooks/settings", json={"retry_delay": 4.0}).raise_for_status()
        yield s


@pytest.fixture(scope="module")
def actor(faulty: Stack) -> Actor:
    return Actor(faulty.espo_url, faulty.advo_url)


def advo(actor: Actor, betnr: int) -> dict[str, Any]:
    resp = actor.advo_call("GET", f"Beteiligte/{betnr}")
    resp.raise_for_status()
    return dict(resp.json())


def advo_records_named(stack: Stack, name: str) -> list[dict[str, Any]]:
    records = httpx.get(f"{stack.advo_url}/__sandbox/records", timeout=30).json()["records"]
    return [r for r in records if r.get("name") == name]


def webhook_log(stack: Stack) -> list[dict[str, Any]]:
    return list(httpx.get(f"{stack.espo_url}/__sandbox/webhooks", timeout=30).json()["log"])


def signed_post(stack: Stack, ids: list[str]) -> httpx.Response:
    wid, secret = cfg.WEBHOOKS["update"]
    body = php_json([{"id": i} for i in ids])
    return httpx.post(
        f"{stack.motia_url}/vmh/webhook/beteiligte/update",
        content=body,
        headers={"Content-Type": "application/json", "Signature": webhook_signature(wid, secret, body)},
        timeout=30,
    )


def restart_redis_empty(stack: Stack) -> None:
    assert stack.redis is not None
    stack.redis.stop()
    stack.redis.start()


def wait_runtime_reconnected(stack: Stack) -> None:
    """Until Motia's Redis client has reconnected, its API answers 503 (by design)."""
    wait_until(
        lambda: httpx.get(
            f"{stack.motia_url}/vmh/beteiligte/sync/status", headers=ADMIN, timeout=30
        ).status_code
        == 200,
        timeout=60,
        interval=1.0,
        message="the runtime reconnected to Redis",
    )


def test_webhook_during_an_outage_is_503_and_the_retry_syncs(faulty: Stack, actor: Actor) -> None:
    rid = create_person(actor, lastName="Ausfall")
    betnr = wait_linked(actor, rid)["betnr"]
    assert faulty.redis is not None
    faulty.redis.stop()
    try:
        resp = signed_post(faulty, [rid])
        assert resp.status_code == 503, resp.text
        assert resp.headers.get("retry-after")
        # A person edits meanwhile: EspoCRM's delivery is answered 503 and queued for a retry.
        actor.espo.put(f"CBeteiligte/{rid}", json={"lastName": "Ausfall-Neu"}).raise_for_status()
        wait_until(
            lambda: any(e["status"] == 503 and rid in e["ids"] for e in webhook_log(faulty)),
            timeout=30,
            message="EspoCRM's delivery answered 503",
        )
        assert advo(actor, betnr)["name"] == "Ausfall"
    finally:
        faulty.redis.start()  # back, and empty (no persistence in the test Redis)
    assert faulty.procs["motia"].poll() is None, "the runtime must survive a Redis outage"
    wait_until(lambda: advo(actor, betnr)["name"] == "Ausfall-Neu", timeout=60, message="retried edit synced")
    wait_until(lambda: espo_get(actor, rid)["syncStatus"] == "clean", timeout=30, message="clean")
    assert any(e["status"] == 200 and rid in e["ids"] for e in webhook_log(faulty))


def test_redis_restarted_empty_mid_run_loses_no_edit_and_duplicates_nothing(
    faulty: Stack, actor: Actor
) -> None:
    edited = create_person(actor, lastName="Leerlauf-Espo")
    advo_side = create_person(actor, lastName="Leerlauf-Advo")
    # After the previous test's restart a create may wait for the identity index to be rebuilt;
    # the waiting record is taken up by the next sweep (every 15 minutes; here by hand).
    wait_until(
        lambda: sweep(faulty)
        and espo_get(actor, edited).get("betnr")
        and espo_get(actor, advo_side).get("betnr"),
        timeout=90,
        interval=2.0,
        message="both records linked",
    )
    edited_betnr = wait_linked(actor, edited)["betnr"]
    advo_betnr = wait_linked(actor, advo_side)["betnr"]
    # Mid-run: a new record and an edit are in flight (webhook queued, sync running) when
    # Redis goes away and comes back empty.
    created = create_person(actor, lastName="Leerlauf-Neu")
    actor.espo.put(f"CBeteiligte/{edited}", json={"firstName": "Käte"}).raise_for_status()
    time.sleep(0.5)
    restart_redis_empty(faulty)
    # A person edits in Advoware after the restart (no snapshot, no watermark any more).
    current = advo(actor, advo_betnr)
    current["titel"] = "Dr. rer. nat."
    for read_only in ("betNr", "geaendertAm", "angelegtAm"):
        current.pop(read_only, None)
    actor.advo_call("PUT", f"Beteiligte/{advo_betnr}", json=current).raise_for_status()
    wait_runtime_reconnected(faulty)

    def converged() -> bool:
        sweep(faulty)  # what the 15-minute cron does; it finds what the lost jobs carried
        return bool(
            espo_get(actor, created).get("betnr")
            and advo(actor, edited_betnr)["vorname"] == "Käte"
            and espo_get(actor, advo_side).get("titel") == "Dr. rer. nat."
        )

    wait_until(converged, timeout=90, interval=2.0, message="every edit and the new record synced")
    for rid in (created, edited, advo_side):
        wait_until(lambda rid=rid: espo_get(actor, rid)["syncStatus"] == "clean", timeout=30, message="clean")
    for name in ("Leerlauf-Espo", "Leerlauf-Advo", "Leerlauf-Neu"):
        assert len(advo_records_named(faulty, name)) == 1, name  # no duplicate party
    assert espo_get(actor, edited)["betnr"] == edited_betnr
    assert espo_get(actor, advo_side)["betnr"] == advo_betnr
    assert espo_get(actor, advo_side)["titel"] == "Dr. rer. nat."  # the Advoware edit stayed
    assert advo(actor, edited_betnr)["vorname"] == "Käte"  # the EspoCRM edit stayed


def test_after_redis_came_back_empty_one_sided_edits_sync_without_a_conflict_notice(
    faulty: Stack, actor: Actor
) -> None:
    """Issue 20: the service's own last PUT (advowareLastSync was taken before it) made a one-sided
    EspoCRM edit look like a conflict once the snapshot was gone; here both one-sided edits arrive,
    right after the restart, and nobody is told of a conflict. The third record is edited on both
    sides, in different fields, before its sync: per record "both changed", which made both
    fields conflicts and reverted the Advoware edit; the record's fingerprint tells them apart."""
    in_espo = create_person(actor, lastName="Einseitig-Espo")
    in_advo = create_person(actor, lastName="Einseitig-Advo")
    in_both = create_person(actor, lastName="Beidseitig")
    wait_until(
        lambda: sweep(faulty) and all(espo_get(actor, r).get("betnr") for r in (in_espo, in_advo, in_both)),
        timeout=90,
        interval=2.0,
        message="the records linked",
    )
    betnrs = {rid: wait_linked(actor, rid)["betnr"] for rid in (in_espo, in_advo, in_both)}
    # Each pair's last sync wrote to Advoware: its PUT's stamp is the newest on the Advoware side.
    for rid in betnrs:
        actor.espo.put(f"CBeteiligte/{rid}", json={"titel": "Dr."}).raise_for_status()
    wait_until(
        lambda: all(advo(actor, b)["titel"] == "Dr." for b in betnrs.values())
        and all(espo_get(actor, rid)["syncStatus"] == "clean" for rid in betnrs),
        timeout=60,
        message="the CRM edits synced",
    )
    restart_redis_empty(faulty)
    wait_runtime_reconnected(faulty)
    # Right away (well within the 30 s the old time rule gave our own writes): one edit per side.
    actor.espo.put(f"CBeteiligte/{in_espo}", json={"firstName": "Henrike"}).raise_for_status()
    edit_advoware(actor, [betnrs[in_advo], betnrs[in_both]], "Prof.")
    actor.espo.put(f"CBeteiligte/{in_both}", json={"firstName": "Jolanda"}).raise_for_status()

    def arrived() -> bool:
        sweep(faulty)  # the Advoware poll (its watermark is gone: it reads 24 h back)
        return bool(
            advo(actor, betnrs[in_espo])["vorname"] == "Henrike"
            and espo_get(actor, in_advo).get("titel") == "Prof."
            and advo(actor, betnrs[in_both])["vorname"] == "Jolanda"
            and espo_get(actor, in_both).get("titel") == "Prof."
        )

    wait_until(arrived, timeout=90, interval=2.0, message="every one-sided edit synced")
    for rid in betnrs:
        wait_until(lambda rid=rid: espo_get(actor, rid)["syncStatus"] == "clean", timeout=30, message="clean")
    assert (
        espo_get(actor, in_espo)["firstName"] == "Henrike"
        and advo(actor, betnrs[in_advo])["titel"] == "Prof."
        and advo(actor, betnrs[in_both])["titel"] == "Prof."  # not reverted by the CRM's "Dr."
        and advo(actor, betnrs[in_both])["vorname"] == "Jolanda"
    )
    notes = httpx.get(f"{faulty.espo_url}/__sandbox/notes", timeout=30).json()["notes"]
    conflicts = [n for n in notes if n.get("parentId") in betnrs and "Konflikt" in str(n.get("post"))]
    assert not conflicts, conflicts
