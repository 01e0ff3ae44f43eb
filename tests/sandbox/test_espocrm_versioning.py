"""Optimistic concurrency of the EspoCRM simulator (X-Version-Number, 409 `modified`), and the
EspoCRM client's VersionConflictError against it (shared/docs/espocrm-api.md §2.3)."""

from __future__ import annotations

import httpx
import pytest

from sandbox import config as cfg
from sandbox.espocrm import EspoSimulator
from services.errors import VersionConflictError
from services.espocrm.client import EspoCrmClient
from tests.sandbox.conftest import API, HUMAN
from tests.support.retry import default_retry
from tests.unit.test_espocrm_client import espo_settings

URL = "/api/v1/CBeteiligte"


async def new_record(ec: httpx.AsyncClient) -> str:
    r = await ec.post(URL, json={"lastName": "Versioniert", "beteiligterTyp": "Person"}, headers=API)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def test_versioning_is_off_by_default_and_versions_nothing(ec: httpx.AsyncClient) -> None:
    assert (await ec.get("/__sandbox/versioning")).json() == {"enabled": False}
    rid = await new_record(ec)
    r = await ec.put(f"{URL}/{rid}", json={"titel": "Dr."}, headers={**API, "X-Version-Number": "99"})
    assert r.status_code == 200 and "versionNumber" not in r.json()


async def test_stale_versioned_write_is_409_modified_with_current_values(ec: httpx.AsyncClient) -> None:
    rid = await new_record(ec)
    assert (await ec.post("/__sandbox/versioning", json={"enabled": True})).json() == {"enabled": True}
    assert (await ec.get(f"{URL}/{rid}", headers=API)).json()["versionNumber"] == 1
    # A person edits: version 2.
    r = await ec.put(f"{URL}/{rid}", json={"titel": "Prof."}, headers=HUMAN)
    assert r.json()["versionNumber"] == 2
    # The service writes with the version it read before (1): refused, nothing written.
    r = await ec.put(f"{URL}/{rid}", json={"titel": "Dr."}, headers={**API, "X-Version-Number": "1"})
    assert r.status_code == 409 and r.headers["X-Status-Reason"] == "modified"
    assert r.json() == {"values": {"titel": "Prof."}, "versionNumber": 2}
    assert (await ec.get(f"{URL}/{rid}", headers=API)).json()["titel"] == "Prof."
    # Writing what is stored anyway passes; so does the current version, and it counts up.
    r = await ec.put(f"{URL}/{rid}", json={"titel": "Prof."}, headers={**API, "X-Version-Number": "1"})
    assert r.status_code == 200
    r = await ec.put(f"{URL}/{rid}", json={"titel": "Dr."}, headers={**API, "X-Version-Number": "3"})
    assert r.status_code == 200 and r.json()["versionNumber"] == 4
    bad = await ec.put(f"{URL}/{rid}", json={"titel": "x"}, headers={**API, "X-Version-Number": "vier"})
    assert bad.status_code == 400
    assert (await ec.post("/__sandbox/versioning", json={"enabled": "ja"})).status_code == 400
    await ec.post("/__sandbox/reset", json={})
    assert (await ec.get("/__sandbox/versioning")).json() == {"enabled": False}


async def _nosleep(_: float) -> None:
    return None


async def test_client_raises_version_conflict_against_the_simulator(
    ec: httpx.AsyncClient, espo: EspoSimulator
) -> None:
    rid = await new_record(ec)
    await ec.post("/__sandbox/versioning", json={"enabled": True})
    await ec.put(f"{URL}/{rid}", json={"firstName": "Anna"}, headers=HUMAN)  # version 2
    async with EspoCrmClient(
        espo_settings(base_url="http://espo.test/api/v1", api_key=cfg.ESPO_API_KEY),
        transport=httpx.ASGITransport(app=espo.app),
        retry=default_retry(sleep=_nosleep),
    ) as client:
        with pytest.raises(VersionConflictError) as info:
            await client.update("CBeteiligte", rid, {"firstName": "Anne"}, version_number=1)
        assert info.value.version_number == 2 and info.value.current_values == {"firstName": "Anna"}
        saved = await client.update("CBeteiligte", rid, {"firstName": "Anne"}, version_number=2)
        assert saved["firstName"] == "Anne" and saved["versionNumber"] == 3
