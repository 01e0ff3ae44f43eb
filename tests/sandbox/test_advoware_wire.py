"""The Advoware simulator's wire modes (sandbox/advoware_drift.py: a stamp that does not move,
PascalCase, UTC stamps, rowId), and the adapter (services/advoware/) against them, in process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from sandbox import config as cfg
from sandbox.__main__ import parse_args
from sandbox.advoware import AdvoSimulator
from services.advoware.client import AdvowareClient
from services.advoware.timezone import local_to_utc, query_since_local
from tests.sandbox.test_advoware import BASE, bearer
from tests.sandbox.test_advoware_drift import client, set_drift

__all__ = ["client"]  # the fixture


def person(**over: Any) -> dict[str, Any]:
    return {"name": "Wire", "vorname": "Erika", "anrede": "Frau", **over}


async def test_frozen_stamp_leaves_geaendert_am_as_it_was(ac: httpx.AsyncClient, advo: AdvoSimulator) -> None:
    auth = await bearer(ac)
    betnr = next(iter(advo.store.records))
    before = (await ac.get(f"{BASE}/{betnr}", headers=auth)).json()
    await set_drift(ac, frozen_stamp=True)
    after = (await ac.put(f"{BASE}/{betnr}", json=person(titel="Dr."), headers=auth)).json()
    assert after["titel"] == "Dr." and after["geaendertAm"] == before["geaendertAm"]
    await set_drift(ac, frozen_stamp=False)
    moved = (await ac.put(f"{BASE}/{betnr}", json=person(titel="Prof."), headers=auth)).json()
    assert moved["geaendertAm"] != before["geaendertAm"]


async def test_pascal_case_utc_and_row_id_on_the_wire(ac: httpx.AsyncClient, advo: AdvoSimulator) -> None:
    auth = await bearer(ac)
    created = (
        await ac.post(BASE, json=person(kommunikation=[{"kommKz": 4, "tlf": "w@x.de"}]), headers=auth)
    ).json()
    betnr = created["betNr"]
    await set_drift(ac, pascal_case=True, utc_stamps=True, row_id=True)
    wire = (await ac.get(f"{BASE}/{betnr}", headers=auth)).json()
    assert wire["BetNr"] == betnr and wire["Name"] == "Wire" and "betNr" not in wire
    assert wire["Kommunikation"][0]["KommKz"] == 4 and wire["Kommunikation"][0]["Tlf"] == "w@x.de"
    # The stamp is the stored local time, converted: UTC without offset.
    stored = advo.store.records[betnr]["geaendertAm"]
    assert wire["GeaendertAm"] == local_to_utc(stored, advo.store.tz).replace(tzinfo=None).isoformat()
    first_row = wire["RowId"]
    # Bodies are bound case-insensitively, as ASP.NET does: PascalCase and camelCase both land.
    put = (await ac.put(f"{BASE}/{betnr}", json={"Name": "Pascal", "Vorname": "E"}, headers=auth)).json()
    assert put["Name"] == "Pascal" and put["RowId"] != first_row
    assert advo.store.records[betnr]["name"] == "Pascal"
    # geaendertAb is read as UTC: the change just made is found from one minute before, in UTC.
    since = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    rows = (await ac.get(BASE, params={"geaendertAb": since}, headers=auth)).json()
    assert betnr in {r["BetNr"] for r in rows}


async def test_the_adapter_syncs_with_a_pascal_case_utc_server(
    client: AdvowareClient, ac: httpx.AsyncClient, advo: AdvoSimulator
) -> None:
    await set_drift(ac, pascal_case=True, utc_stamps=True, row_id=True)
    created = await client.create_beteiligter(person(kommunikation=[{"kommKz": 3, "tlf": "0171 1"}]))
    betnr = created["betNr"]
    assert created["name"] == "Wire" and created["rowId"] and created["kommunikation"][0]["kommKz"] == 3
    updated = await client.update_beteiligter(betnr, {**created, "titel": "Dr."})
    assert updated["titel"] == "Dr." and advo.store.records[betnr]["titel"] == "Dr."
    # The change poll's query in UTC (ADVOWARE_TIMEZONE=UTC) finds the write.
    since = query_since_local(datetime.now(UTC) - timedelta(minutes=1), ZoneInfo("UTC"))
    found = [row["betNr"] async for row in client.iter_beteiligte(changed_since_local=since)]
    assert betnr in found


def test_start_modes_come_from_the_command_line_and_survive_a_reset() -> None:
    config = parse_args(["--advo-drift", "pascal_case,utc_stamps"])
    assert config.advo_drift == {"pascal_case": True, "utc_stamps": True}
    assert "ADVOWARE_TIMEZONE=UTC" in cfg.render_env(config)
    sim = AdvoSimulator(config)
    assert sim.drift.pascal_case and sim.drift.utc_stamps
    sim.drift.update({"pascal_case": False})
    sim.admin_reset({})
    assert sim.drift.pascal_case  # back to the start modes, not to the contract
    with pytest.raises(SystemExit):
        parse_args(["--advo-drift", "no_such_mode"])
