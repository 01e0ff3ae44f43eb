"""The Advoware simulator's contract-drift modes (/__sandbox/drift), and the defensive adapter
(services/advoware/client.py) against each of them, in process (ASGI transport, fakeredis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import httpx
import pytest

from sandbox import config as cfg
from sandbox.advoware import AdvoSimulator
from services.advoware.client import AdvowareClient
from services.advoware.concurrency import LocalSemaphore
from services.errors import ContractError, NotFoundError, NotFoundUnconfirmedError
from services.settings import Settings
from tests.sandbox.test_advoware import BASE, bearer
from tests.support.retry import default_retry

WIRE_MODES_OFF = {"frozen_stamp": False, "pascal_case": False, "utc_stamps": False, "row_id": False}


async def _nosleep(_: float) -> None:
    return None


@pytest.fixture
async def client(advo: AdvoSimulator) -> AsyncIterator[AdvowareClient]:
    advo.admin_reset({"records": 230, "demo": False})
    # The service's own sandbox settings (sandbox/config.py render_env), pointed at the ASGI app.
    lines = (line.split("=", 1) for line in cfg.render_env().splitlines() if not line.startswith("#"))
    env: dict[str, Any] = {name: value for name, value in lines}
    env["ADVOWARE_API_BASE_URL"] = env["ADVOWARE_SECURITY_URL"] = "http://advo.test/"
    settings = Settings(_env_file=None, **env)  # type: ignore[call-arg]
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    c = AdvowareClient(
        settings,
        redis,
        transport=httpx.ASGITransport(app=advo.app),
        retry=default_retry(sleep=_nosleep),
        limiter=LocalSemaphore(4),
    )
    yield c
    await c.aclose()
    await redis.aclose()


async def set_drift(ac: httpx.AsyncClient, **drift: object) -> dict[str, object]:
    r = await ac.post("/__sandbox/drift", json=drift)
    assert r.status_code == 200, r.text
    return dict(r.json())


# ---------------------------------------------------------------- the modes over HTTP


async def test_drift_endpoint_shows_sets_validates_and_clears(
    ac: httpx.AsyncClient, advo: AdvoSimulator
) -> None:
    assert (await ac.get("/__sandbox/drift")).json() == {
        "ignore_skip": False,
        "page_cap": None,
        "records_404": False,
        "listing_404": False,
        **WIRE_MODES_OFF,
    }
    assert (await set_drift(ac, page_cap=50))["page_cap"] == 50
    assert (await set_drift(ac, ignore_skip=True)) == {
        "ignore_skip": True,
        "page_cap": 50,
        "records_404": False,
        "listing_404": False,
        **WIRE_MODES_OFF,
    }
    for bad in ({"page_cap": 0}, {"page_cap": "50"}, {"ignore_skip": "yes"}, {"skip_everything": True}):
        r = await ac.post("/__sandbox/drift", json=bad)
        assert r.status_code == 400, bad
    assert (await ac.get("/__sandbox/drift")).json()["page_cap"] == 50  # a bad request changed nothing
    assert (await ac.delete("/__sandbox/drift")).json()["ignore_skip"] is False
    await set_drift(ac, records_404=True)
    assert (await ac.post("/__sandbox/reset", json={})).status_code == 200
    assert (await ac.get("/__sandbox/drift")).json()["records_404"] is False


async def test_page_cap_and_ignore_skip_change_the_listing(
    ac: httpx.AsyncClient, advo: AdvoSimulator
) -> None:
    advo.admin_reset({"records": 120, "demo": False})
    auth = await bearer(ac)
    full = (await ac.get(BASE, params={"skip": 0, "take": 100}, headers=auth)).json()
    assert len(full) == 100
    await set_drift(ac, page_cap=50)
    capped = (await ac.get(BASE, params={"skip": 0, "take": 100}, headers=auth)).json()
    assert [r["betNr"] for r in capped] == [r["betNr"] for r in full[:50]]
    await set_drift(ac, page_cap=None, ignore_skip=True)
    second = (await ac.get(BASE, params={"skip": 100, "take": 100}, headers=auth)).json()
    assert [r["betNr"] for r in second] == [r["betNr"] for r in full]  # the first page again


async def test_records_404_and_listing_404(ac: httpx.AsyncClient, advo: AdvoSimulator) -> None:
    auth = await bearer(ac)
    betnr = next(iter(advo.store.records))
    assert (await ac.get(f"{BASE}/{betnr}", headers=auth)).status_code == 200
    await set_drift(ac, records_404=True)
    r = await ac.get(f"{BASE}/{betnr}", headers=auth)
    assert r.status_code == 404 and "Message" in r.json()
    assert (await ac.put(f"{BASE}/{betnr}", json={"name": "x"}, headers=auth)).status_code == 404
    assert (await ac.get(BASE, params={"take": 1}, headers=auth)).status_code == 200
    await set_drift(ac, listing_404=True)
    assert (await ac.get(BASE, params={"take": 1}, headers=auth)).status_code == 404
    assert betnr in advo.store.records  # nothing was deleted


# ---------------------------------------------------------------- the adapter against them


async def all_betnrs(client: AdvowareClient) -> list[int]:
    return [row["betNr"] async for row in client.iter_beteiligte()]


async def test_adapter_reads_everything_from_a_server_capping_pages_at_50(
    client: AdvowareClient, ac: httpx.AsyncClient, advo: AdvoSimulator
) -> None:
    expected = sorted(advo.store.records)
    await set_drift(ac, page_cap=50)
    assert sorted(await all_betnrs(client)) == expected and len(expected) == 230


async def test_adapter_fails_loudly_on_a_server_ignoring_skip(
    client: AdvowareClient, ac: httpx.AsyncClient
) -> None:
    await set_drift(ac, ignore_skip=True)
    with pytest.raises(ContractError, match="ignore 'skip'"):
        await all_betnrs(client)
    await set_drift(ac, ignore_skip=True, page_cap=50)
    with pytest.raises(ContractError):
        await all_betnrs(client)


async def test_adapter_confirms_404_for_a_server_answering_404_for_every_record(
    client: AdvowareClient, ac: httpx.AsyncClient, advo: AdvoSimulator
) -> None:
    betnr = next(iter(advo.store.records))
    await set_drift(ac, records_404=True)
    # The listing still answers: the simulator says the record is gone, twice. It is a confirmed
    # 404 for this record; the per-sweep share of 404s is the circuit breaker's to judge.
    with pytest.raises(NotFoundError) as info:
        await client.get_beteiligter(betnr)
    assert type(info.value) is NotFoundError


async def test_adapter_does_not_confirm_404_from_a_misrouted_url(
    client: AdvowareClient, ac: httpx.AsyncClient, advo: AdvoSimulator
) -> None:
    betnr = next(iter(advo.store.records))
    await set_drift(ac, records_404=True, listing_404=True)
    with pytest.raises(NotFoundUnconfirmedError):
        await client.get_beteiligter(betnr)
    with pytest.raises(NotFoundUnconfirmedError):
        await client.update_beteiligter(betnr, {"name": "x"})


async def test_adapter_against_the_contract_as_assumed(client: AdvowareClient, advo: AdvoSimulator) -> None:
    assert sorted(await all_betnrs(client)) == sorted(advo.store.records)
    betnr = next(iter(advo.store.records))
    record = await client.get_beteiligter(betnr)
    assert (await client.update_beteiligter(betnr, {**record, "name": "Neu"}))["name"] == "Neu"
    created = await client.create_beteiligter({"name": "Angelegt"})
    assert created["betNr"] in advo.store.records
    await client.probe()
