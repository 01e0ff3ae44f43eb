"""Advoware simulator against the assumed contract (shared/docs/advoware-api.md Part 2) + fault injection."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from sandbox import config as cfg
from sandbox.advoware import AdvoSimulator
from sandbox.signing import advoware_signature

BASE = "/api/v1/advonet/Beteiligte"


def token_body(**overrides: Any) -> dict[str, Any]:
    nonce = str(uuid.uuid4())
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"  # 7 fractional digits
    body = {
        "AppID": cfg.ADVO_APP_ID,
        "Kanzlei": cfg.ADVO_KANZLEI,
        "Database": cfg.ADVO_DATABASE,
        "User": cfg.ADVO_USER,
        "Password": cfg.ADVO_PASSWORD,
        "Role": 2,
        "Product": 64,
        "Nonce": nonce,
        "RequestTimeStamp": ts,
        "HMAC512Signature": advoware_signature(cfg.ADVO_API_KEY, 64, cfg.ADVO_APP_ID, nonce, ts),
    }
    body.update(overrides)
    return body


async def bearer(ac: httpx.AsyncClient) -> dict[str, str]:
    r = await ac.post("/api/v1/Token", json=token_body())
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def test_token_success_and_failures(ac: httpx.AsyncClient) -> None:
    r = await ac.post("/api/v1/Token", json=token_body())
    tok = r.json()
    assert set(tok) == {"token_type", "expires_in", "expiration_utc", "access_token", "refresh_token"}
    assert tok["expires_in"] == 3600
    r = await ac.post("/api/v1/Token", json=token_body(HMAC512Signature="AAAA"))
    assert r.status_code == 401 and "Signatur ungültig" in r.json()["Message"]
    r = await ac.post("/api/v1/Token", json=token_body(Password="falsch"))
    assert r.status_code == 401 and r.json()["Message"] == "Falscher Name oder falsches Kennwort"
    body = token_body()
    assert (await ac.post("/api/v1/Token", json=body)).status_code == 200
    assert (await ac.post("/api/v1/Token", json=body)).status_code == 401  # nonce replay
    # Nonce is signed: changing it without re-signing fails.
    bad = token_body()
    bad["Nonce"] = str(uuid.uuid4())
    assert (await ac.post("/api/v1/Token", json=bad)).status_code == 401


async def test_bearer_required_and_expiry(ac: httpx.AsyncClient, advo: AdvoSimulator) -> None:
    r = await ac.get(BASE)
    assert r.status_code == 401 and "Message" in r.json()
    headers = await bearer(ac)
    assert (await ac.get(BASE, headers=headers)).status_code == 200
    advo.store.auth.token_ttl = 0
    short = await bearer(ac)
    assert (await ac.get(BASE, headers=short)).status_code == 401
    await ac.post("/__sandbox/tokens/expire")
    assert (await ac.get(BASE, headers=headers)).status_code == 401


async def test_list_paging_take_cap_and_geaendert_ab(ac: httpx.AsyncClient, advo: AdvoSimulator) -> None:
    h = await bearer(ac)
    assert (await ac.get(BASE, params={"take": 101}, headers=h)).status_code == 400
    page1 = (await ac.get(BASE, params={"skip": 0, "take": 10}, headers=h)).json()
    page2 = (await ac.get(BASE, params={"skip": 10, "take": 10}, headers=h)).json()
    assert isinstance(page1, list) and len(page1) == 10
    assert not {r["betNr"] for r in page1} & {r["betNr"] for r in page2}
    past = (await ac.get(BASE, params={"skip": 1000, "take": 10}, headers=h)).json()
    assert past == []
    stamp = max(r["geaendertAm"] for r in advo.store.records.values())
    rows = (await ac.get(BASE, params={"geaendertAb": stamp}, headers=h)).json()
    assert rows and all(r["geaendertAm"] >= stamp for r in rows)  # inclusive


async def test_crud_full_replace_and_local_time(ac: httpx.AsyncClient, advo: AdvoSimulator) -> None:
    h = await bearer(ac)
    r = await ac.get(f"{BASE}/999", headers=h)
    assert r.status_code == 404 and r.json() == {"Message": "Beteiligter nicht gefunden"}
    r = await ac.post(BASE, headers=h, json={"vorname": "Käthe"})
    assert r.status_code == 400 and "name" in r.json()["Message"]
    r = await ac.post(
        BASE,
        headers=h,
        json={
            "anrede": "Frau",
            "vorname": "Käthe",
            "name": "Schäfer",
            "zusatz": "c/o Kanzlei",
            "kommunikation": [{"kommKz": 4, "tlf": "k@example.org", "bemerkung": None, "online": False}],
        },
    )
    assert r.status_code == 201
    created = r.json()
    assert created["betNr"] == advo.store.next_betnr - 1
    r2 = await ac.post(BASE, headers=h, json={"name": "Zweite GmbH", "rechtsform": "GmbH"})
    assert r2.json()["betNr"] == created["betNr"] + 1
    local_now = datetime.now(ZoneInfo("Europe/Berlin")).replace(tzinfo=None)
    stamp = datetime.fromisoformat(created["geaendertAm"])
    assert "+" not in created["geaendertAm"] and "Z" not in created["geaendertAm"]
    assert abs(stamp - local_now) < timedelta(seconds=5)
    # PUT without zusatz/kommunikation clears them (full replace).
    r = await ac.put(
        f"{BASE}/{created['betNr']}",
        headers=h,
        json={"anrede": "Frau", "vorname": "Käthe", "name": "Schäfer-Groß"},
    )
    assert r.status_code == 200
    updated = r.json()
    assert updated["name"] == "Schäfer-Groß" and updated["zusatz"] is None and updated["kommunikation"] == []
    assert updated["angelegtAm"] == created["angelegtAm"]
    r = await ac.delete(f"{BASE}/{created['betNr']}", headers=h)
    assert r.status_code == 204
    calls = (await ac.get("/__sandbox/calls")).json()["calls"]
    assert any(c["method"] == "DELETE" and c["user"] == cfg.ADVO_USER for c in calls)


async def test_faults_503_nicht_angemeldet_then_recovers(ac: httpx.AsyncClient) -> None:
    h = await bearer(ac)
    await ac.post(
        "/__sandbox/faults",
        json={"next_n": 2, "kind": "503_nicht_angemeldet", "match": {"path": "Beteiligte"}},
    )
    for _ in range(2):
        r = await ac.get(BASE, headers=h)
        assert r.status_code == 503
        assert r.json() == {"Message": "Die Kanzlei SANDBOX ist nicht angemeldet"}
    assert (await ac.get(BASE, headers=h)).status_code == 200
    calls = (await ac.get("/__sandbox/calls")).json()
    assert [c["status"] for c in calls["calls"][-3:]] == [503, 503, 200]


async def test_faults_429_match_rate_latency_and_clear(ac: httpx.AsyncClient, advo: AdvoSimulator) -> None:
    h = await bearer(ac)
    await ac.post("/__sandbox/faults", json={"kind": "429", "retry_after": 7, "match": {"method": "POST"}})
    assert (await ac.get(BASE, headers=h)).status_code == 200  # method filter
    r = await ac.post(BASE, headers=h, json={"name": "X"})
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    await ac.post("/__sandbox/faults", json={"kind": "500", "rate": 0.5, "seed": 1, "next_n": None})
    statuses = [(await ac.get(BASE, headers=h, params={"take": 1})).status_code for _ in range(40)]
    assert 5 < statuses.count(500) < 35
    assert (await ac.delete("/__sandbox/faults")).json() == {"faults": []}
    await ac.post("/__sandbox/latency", json={"latency_ms": 30})
    started = datetime.now()
    assert (await ac.get(BASE, headers=h, params={"take": 1})).status_code == 200
    assert datetime.now() - started >= timedelta(milliseconds=30)
    assert (await ac.post("/__sandbox/faults", json={"kind": "bogus"})).status_code == 400


async def test_call_log_since_and_reset(ac: httpx.AsyncClient, advo: AdvoSimulator) -> None:
    h = await bearer(ac)
    seq = (await ac.get("/__sandbox/calls")).json()["seq"]
    await ac.get(f"{BASE}/100001", headers=h)
    new = (await ac.get("/__sandbox/calls", params={"since": seq})).json()
    assert [(c["method"], c["path"], c["status"]) for c in new["calls"]] == [("GET", f"{BASE}/100001", 200)]
    assert new["counters"]["GET /api/v1/advonet/Beteiligte/{id}"] == 1
    await ac.post(BASE, headers=h, json={"name": "Neu"})
    before = len(advo.store.records)
    await ac.post("/__sandbox/reset", json={})
    assert len(advo.store.records) == before - 1
    dump = (await ac.get("/__sandbox/records")).json()
    assert len(dump["records"]) == before - 1 and dump["manifest"]["advo_only"]


async def test_ignore_on_put_mode_answers_200_but_keeps_the_field(ac: httpx.AsyncClient) -> None:
    h = await bearer(ac)
    rec = (await ac.get(BASE, headers=h, params={"take": 1})).json()[0]
    betnr, titel = rec["betNr"], rec.get("titel")
    r = await ac.post("/__sandbox/ignore-on-put", json={"fields": ["titel"]})
    assert r.status_code == 200 and r.json() == {"fields": ["titel"]}
    assert (await ac.post("/__sandbox/ignore-on-put", json={"fields": ["nope"]})).status_code == 400
    body = {k: v for k, v in rec.items() if k not in ("betNr", "geaendertAm", "angelegtAm")}
    body.update({"titel": "Prof. Dr. Dr.", "zusatz": "geändert"})
    r = await ac.put(f"{BASE}/{betnr}", headers=h, json=body)
    assert r.status_code == 200 and r.json()["titel"] == titel and r.json()["zusatz"] == "geändert"
    assert (await ac.get(f"{BASE}/{betnr}", headers=h)).json()["titel"] == titel
    await ac.delete("/__sandbox/ignore-on-put")
    r = await ac.put(f"{BASE}/{betnr}", headers=h, json=body)
    assert r.json()["titel"] == "Prof. Dr. Dr."
