"""Outgoing EspoCRM webhooks: item shapes, signatures, skipOwn, batching and the retry rules."""

from __future__ import annotations

import json

import httpx
import pytest

from sandbox import config as cfg
from sandbox.espocrm import EspoSimulator
from sandbox.signing import php_json, webhook_signature, webhook_x_signature

from .conftest import API, HUMAN, Receiver, asgi_client

UPDATE_ID, UPDATE_SECRET = cfg.WEBHOOKS["update"]


async def flush(ec: httpx.AsyncClient, force: bool = False) -> list[dict]:
    r = await ec.post("/__sandbox/webhooks/flush", json={"force_retries": force})
    return r.json()["deliveries"]


async def test_update_item_changed_attrs_id_last_no_modified_at(
    ec: httpx.AsyncClient, espo: EspoSimulator, receiver: Receiver
) -> None:
    rid = espo.store.manifest["linked_equal"][0]["id"]
    r = await ec.put(
        f"/api/v1/CBeteiligte/{rid}",
        headers=HUMAN,
        json={"titel": "Prof. Dr.", "registergericht": "Amtsgericht Lübeck", "name": None}
        | {"name": espo.store.records[rid]["name"]},
    )
    assert r.status_code == 200
    deliveries = await flush(ec)
    assert [d["outcome"] for d in deliveries] == ["success"]
    req = receiver.requests[0]
    assert req["path"] == "/hook/update"
    item = req["items"][0]
    assert list(item)[-1] == "id" and item["id"] == rid
    assert "modifiedAt" not in item
    assert item["titel"] == "Prof. Dr." and item["registergericht"] == "Amtsgericht Lübeck"
    assert "name" not in item  # unchanged attributes are not sent
    assert set(item) <= {"titel", "registergericht", "modifiedById", "modifiedByName", "id"}
    # Exact bytes and both signatures.
    assert req["raw"] == php_json(req["items"])
    assert req["headers"]["content-type"] == "application/json"
    assert req["headers"]["signature"] == webhook_signature(UPDATE_ID, UPDATE_SECRET, req["raw"])
    assert req["headers"]["x-signature"] == webhook_x_signature(UPDATE_ID, UPDATE_SECRET, req["raw"])


async def test_create_and_delete_items(ec: httpx.AsyncClient, receiver: Receiver) -> None:
    r = await ec.post(
        "/api/v1/CBeteiligte",
        headers=HUMAN,
        json={
            "name": "Süßwaren Neu GmbH",
            "beteiligterTyp": "Firma",
            "rechtsform": "GmbH",
            "emailAddressData": [{"emailAddress": "info@suess.example.org"}],
        },
    )
    rid = r.json()["id"]
    await ec.post("/api/v1/CBeteiligte", headers=HUMAN, json={"name": "Ohne Mail AG", "rechtsform": "AG"})
    await ec.delete(f"/api/v1/CBeteiligte/{rid}", headers=HUMAN)
    await flush(ec)
    by_path = {req["path"]: req for req in receiver.requests}
    created = by_path["/hook/create"]["items"]
    assert len(created) == 2
    first = created[0]
    assert first["id"] == rid and first["createdAt"] and first["modifiedAt"] and first["createdById"]
    assert first["name"] == "Süßwaren Neu GmbH" and first["emailAddress"] == "info@suess.example.org"
    assert first["emailAddressData"][0]["lower"] == "info@suess.example.org"
    assert "emailAddressData" not in created[1]
    assert by_path["/hook/delete"]["items"] == [{"id": rid}]
    assert b"\\u00df" in by_path["/hook/create"]["raw"]  # PHP-style escaping of non-ASCII


async def test_skip_own_and_no_op_saves_fire_nothing(
    ec: httpx.AsyncClient, espo: EspoSimulator, receiver: Receiver
) -> None:
    rid = espo.store.manifest["linked_equal"][0]["id"]
    # The API user's own writes are skipped (skipOwn, the webhooks belong to the API user).
    await ec.put(f"/api/v1/CBeteiligte/{rid}", headers=API, json={"titel": "Dr. rer. nat."})
    # A save that changes nothing but modifiedAt/modifiedBy fires nothing.
    await ec.put(f"/api/v1/CBeteiligte/{rid}", headers=HUMAN, json={"titel": "Dr. rer. nat."})
    assert espo.store.records[rid]["modifiedById"] == cfg.ESPO_HUMAN_USER_ID
    await flush(ec)
    assert receiver.requests == []
    await ec.put(f"/api/v1/CBeteiligte/{rid}", headers=HUMAN, json={"titel": "Dr."})
    await flush(ec)
    assert [req["items"] for req in receiver.requests] == [[{"titel": "Dr.", "id": rid}]]


async def test_batches_of_at_most_50(ec: httpx.AsyncClient, espo: EspoSimulator, receiver: Receiver) -> None:
    ids = list(espo.store.records)[:30]
    for round_ in range(4):
        for rid in ids:
            await ec.put(f"/api/v1/CBeteiligte/{rid}", headers=HUMAN, json={"syncRetryCount": round_ + 1})
    await flush(ec)
    assert [len(req["items"]) for req in receiver.requests] == [50, 50, 20]


@pytest.mark.parametrize(
    ("status", "expected_attempts", "outcomes"),
    [
        (503, 4, ["retry", "retry", "retry", "failed"]),
        (500, 4, ["retry", "retry", "retry", "failed"]),
        (400, 1, ["failed"]),
        (502, 1, ["failed"]),
    ],
)
async def test_retry_rules(
    ec: httpx.AsyncClient,
    espo: EspoSimulator,
    receiver: Receiver,
    status: int,
    expected_attempts: int,
    outcomes: list[str],
) -> None:
    receiver.statuses = [status] * 10
    rid = next(iter(espo.store.records))
    await ec.put(f"/api/v1/CBeteiligte/{rid}", headers=HUMAN, json={"titel": "Dr."})
    seen = []
    for _ in range(6):
        seen += [d["outcome"] for d in await flush(ec, force=True)]
    assert seen == outcomes
    assert len(receiver.requests) == expected_attempts
    assert all(req["raw"] == receiver.requests[0]["raw"] for req in receiver.requests)


async def test_410_unsubscribes_with_pending_items(
    ec: httpx.AsyncClient, espo: EspoSimulator, receiver: Receiver
) -> None:
    espo.dispatcher.settings.batch_size = 1
    receiver.statuses = [410]
    ids = list(espo.store.records)[:3]
    for rid in ids:
        await ec.put(f"/api/v1/CBeteiligte/{rid}", headers=HUMAN, json={"titel": "Dr."})
    deliveries = await flush(ec)
    assert [d["outcome"] for d in deliveries][:1] == ["unsubscribed"]
    assert UPDATE_ID not in espo.dispatcher.webhooks
    assert len(receiver.requests) == 1
    state = (await ec.get("/__sandbox/webhooks")).json()
    assert UPDATE_ID not in state["pending"]


async def test_timeout_counts_as_408_and_is_retried(
    ec: httpx.AsyncClient, espo: EspoSimulator, receiver: Receiver
) -> None:
    espo.dispatcher.settings.timeout = 0.1
    receiver.delay = 0.3
    rid = next(iter(espo.store.records))
    await ec.put(f"/api/v1/CBeteiligte/{rid}", headers=HUMAN, json={"titel": "Dr."})
    deliveries = await flush(ec)
    assert deliveries[0]["status"] == 408 and deliveries[0]["outcome"] == "retry"
    receiver.delay = 0
    deliveries = await flush(ec, force=True)
    assert deliveries[0]["outcome"] == "success" and deliveries[0]["attempt"] == 2
    assert len(receiver.requests) == 2  # at-least-once: the slow receiver got it twice


async def test_redeliver_and_shuffle(ec: httpx.AsyncClient, espo: EspoSimulator, receiver: Receiver) -> None:
    for rid in list(espo.store.records)[:5]:
        await ec.put(f"/api/v1/CBeteiligte/{rid}", headers=HUMAN, json={"titel": "Dr."})
    await flush(ec)
    assert len(receiver.requests) == 1
    r = await ec.post("/__sandbox/webhooks/redeliver", json={"last": 1})
    assert r.json() == {"requeued": 1}
    deliveries = await flush(ec)
    assert deliveries[0]["redelivery"] is True
    assert receiver.requests[1]["raw"] == receiver.requests[0]["raw"]
    settings = (
        await ec.post(
            "/__sandbox/webhooks/settings", json={"shuffle": True, "shuffle_items": True, "batch_size": 2}
        )
    ).json()
    assert settings["shuffle"] is True and settings["batch_size"] == 2


async def test_background_delivery_loop(sandbox_config: cfg.SandboxConfig, receiver: Receiver) -> None:
    import asyncio

    sim = EspoSimulator(sandbox_config.with_(webhook_interval=0.02))
    sim.dispatcher.transport = httpx.ASGITransport(app=receiver.app())
    sim.dispatcher.start()
    try:
        async with asgi_client(sim.app, "http://e") as c:
            rid = next(iter(sim.store.records))
            await c.put(f"/api/v1/CBeteiligte/{rid}", headers=HUMAN, json={"titel": "Dr."})
        for _ in range(100):
            if receiver.requests:
                break
            await asyncio.sleep(0.02)
        assert json.loads(receiver.requests[0]["raw"])[0]["id"] == rid
    finally:
        await sim.dispatcher.stop()
