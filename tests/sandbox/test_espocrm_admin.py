"""The simulated EspoCRM's administration API (shared/docs/espocrm-api.md §7): admin only, the
`C` prefix, 409 for an existing name, fields served and validated from the live metadata, an
instance started without the entity, webhooks owned by the API user."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from sandbox import config as cfg
from sandbox.espocrm import EspoSimulator
from services.espocrm.schema import ENTITY, FIELDS
from tests.sandbox.conftest import API, HUMAN, asgi_client

ADMIN = {
    "Espo-Authorization": base64.b64encode(
        f"{cfg.ESPO_HUMAN_USER_NAME}:{cfg.ESPO_ADMIN_PASSWORD}".encode()
    ).decode()
}
FIELDS_URL = f"/api/v1/Admin/fieldManager/{ENTITY}"
CREATE = "/api/v1/EntityManager/action/createEntity"


@pytest.fixture
async def empty() -> AsyncIterator[httpx.AsyncClient]:
    """An instance without the entity and without webhooks."""
    sim = EspoSimulator(cfg.SandboxConfig(entity_enabled=False, webhook_base="http://receiver.test/hook"))
    async with asgi_client(sim.app, "http://espo.test") as client:
        yield client
    await sim.dispatcher.stop()


async def test_metadata_serves_the_one_schema(ec: httpx.AsyncClient) -> None:
    meta = (await ec.get("/api/v1/Metadata", headers=API)).json()
    fields = meta["entityDefs"][ENTITY]["fields"]
    assert {f.name: f.metadata() for f in FIELDS} == fields
    assert meta["scopes"][ENTITY]["stream"] is True
    assert meta["entityDefs"][ENTITY]["optimisticConcurrencyControl"] is False  # the sandbox's default


async def test_without_the_entity_its_routes_do_not_exist(empty: httpx.AsyncClient) -> None:
    assert (await empty.get(f"/api/v1/{ENTITY}", headers=API)).status_code == 404
    assert (await empty.get("/api/v1/Metadata", headers=API)).json() == {"scopes": {}, "entityDefs": {}}
    assert (await empty.get("/api/v1/Webhook", headers=API)).json()["total"] == 0
    hook = {"event": f"{ENTITY}.update", "url": "http://receiver.test/hook/update", "skipOwn": True}
    assert (await empty.post("/api/v1/Webhook", json=hook, headers=API)).status_code == 400


async def test_admin_endpoints_refuse_non_admins(empty: httpx.AsyncClient) -> None:
    body = {"name": "Beteiligte", "type": "Base"}
    assert (await empty.post(CREATE, json=body, headers=API)).status_code == 403
    assert (await empty.post(CREATE, json=body)).status_code == 401
    bad_password = {"Espo-Authorization": base64.b64encode(b"anna.admin:wrong").decode()}
    assert (await empty.post(CREATE, json=body, headers=bad_password)).status_code == 401
    # The API user has no password: it cannot log in as a person would.
    api_login = base64.b64encode(f"{cfg.ESPO_API_USER_NAME}:".encode()).decode()
    assert (await empty.post(CREATE, json=body, headers={"Espo-Authorization": api_login})).status_code == 401


async def test_create_entity_prefixes_c_and_409_on_existing_name(empty: httpx.AsyncClient) -> None:
    body = {"name": "Beteiligte", "type": "Base", "stream": True, "optimisticConcurrencyControl": True}
    resp = await empty.post(CREATE, json=body, headers=ADMIN)
    assert resp.status_code == 200 and resp.json() == {"name": ENTITY}
    assert (await empty.post(CREATE, json=body, headers=ADMIN)).status_code == 409
    meta = (await empty.get("/api/v1/Metadata", headers=API)).json()
    assert set(meta["entityDefs"][ENTITY]["fields"]) == {"name"}  # a Base entity: name and system fields
    assert meta["entityDefs"][ENTITY]["optimisticConcurrencyControl"] is True
    listing = await empty.get(f"/api/v1/{ENTITY}", headers=API)
    assert listing.status_code == 200 and listing.json()["total"] == 0


async def test_fields_are_created_409_on_existing_and_validated_live(empty: httpx.AsyncClient) -> None:
    await empty.post(CREATE, json={"name": "Beteiligte", "type": "Base"}, headers=ADMIN)
    status = {"name": "syncStatus", "type": "enum", "options": ["pending_sync", "clean"]}
    assert (await empty.post(FIELDS_URL, json=status, headers=API)).status_code == 403
    assert (await empty.post(FIELDS_URL, json=status, headers=ADMIN)).status_code == 200
    assert (await empty.post(FIELDS_URL, json=status, headers=ADMIN)).status_code == 409
    titel = {"name": "titel", "type": "varchar", "maxLength": 5}
    assert (await empty.post(FIELDS_URL, json=titel, headers=ADMIN)).status_code == 200
    # A field the instance lacks is dropped silently; an enum value it lacks is a 400 naming the field.
    created = await empty.post(
        f"/api/v1/{ENTITY}", json={"name": "X", "betnr": 5, "syncStatus": "clean"}, headers=HUMAN
    )
    assert created.status_code == 200 and "betnr" not in created.json()
    rid = created.json()["id"]
    refused = await empty.put(f"/api/v1/{ENTITY}/{rid}", json={"syncStatus": "excluded"}, headers=HUMAN)
    assert refused.status_code == 400 and "field: syncStatus" in refused.headers["X-Status-Reason"]
    too_long = await empty.put(f"/api/v1/{ENTITY}/{rid}", json={"titel": "Prof. Dr."}, headers=HUMAN)
    assert (
        too_long.status_code == 400 and "field: titel, type: maxLength" in too_long.headers["X-Status-Reason"]
    )
    # Adding the value (the Field Manager's PUT) makes the write pass; the type cannot change.
    put = {"options": ["pending_sync", "clean", "excluded"]}
    assert (await empty.put(f"{FIELDS_URL}/syncStatus", json=put, headers=ADMIN)).status_code == 200
    ok = await empty.put(f"/api/v1/{ENTITY}/{rid}", json={"syncStatus": "excluded"}, headers=HUMAN)
    assert ok.status_code == 200 and ok.json()["syncStatus"] == "excluded"
    retype = await empty.put(f"{FIELDS_URL}/syncStatus", json={"type": "varchar"}, headers=ADMIN)
    assert retype.status_code == 400


async def test_update_entity_switches_stream_and_concurrency(ec: httpx.AsyncClient) -> None:
    update = "/api/v1/EntityManager/action/updateEntity"
    body = {"name": ENTITY, "stream": False, "optimisticConcurrencyControl": True}
    assert (await ec.post(update, json=body, headers=ADMIN)).status_code == 200
    meta = (await ec.get("/api/v1/Metadata", headers=API)).json()
    assert meta["scopes"][ENTITY]["stream"] is False
    assert meta["entityDefs"][ENTITY]["optimisticConcurrencyControl"] is True
    row = (await ec.get(f"/api/v1/{ENTITY}", params={"maxSize": 1}, headers=API)).json()["list"][0]
    assert (await ec.get(f"/api/v1/{ENTITY}/{row['id']}", headers=API)).json()["versionNumber"] == 1


async def test_webhooks_belong_to_their_creator_and_show_the_secret_on_read(ec: httpx.AsyncClient) -> None:
    hook = {"event": f"{ENTITY}.update", "url": "https://sync.example.de/x", "skipOwn": True}
    created = (await ec.post("/api/v1/Webhook", json=hook, headers=API)).json()
    assert created["userId"] == cfg.ESPO_API_USER_ID
    listed = (await ec.get("/api/v1/Webhook", headers=API)).json()["list"]
    assert all("secretKey" not in w for w in listed)
    read = (await ec.get(f"/api/v1/Webhook/{created['id']}", headers=API)).json()
    assert read["secretKey"] == created["secretKey"]
    off = await ec.put(f"/api/v1/Webhook/{created['id']}", json={"isActive": False}, headers=API)
    assert off.status_code == 200 and off.json()["isActive"] is False and off.json()["skipOwn"] is True
