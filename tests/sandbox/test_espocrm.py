"""EspoCRM simulator against shared/docs/espocrm-api.md (REST, auth, listing, validation, notes)."""

from __future__ import annotations

import json
import re

import httpx

from sandbox import config as cfg
from sandbox.espocrm import EspoSimulator
from sandbox.signing import espo_hmac_header

from .conftest import API, HUMAN

DT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


async def test_auth_api_key_hmac_and_401_empty(ec: httpx.AsyncClient) -> None:
    r = await ec.get("/api/v1/CBeteiligte")
    assert r.status_code == 401 and r.content == b""
    r = await ec.get("/api/v1/CBeteiligte", headers={"X-Api-Key": "wrong"})
    assert r.status_code == 401 and r.content == b""
    assert (await ec.get("/api/v1/CBeteiligte", headers=API)).status_code == 200
    me = (await ec.get("/api/v1/App/user", headers=HUMAN)).json()["user"]
    assert me["id"] == cfg.ESPO_HUMAN_USER_ID and me["userName"] == "anna.admin"
    good = espo_hmac_header(cfg.ESPO_API_KEY, cfg.ESPO_API_SECRET, "GET", "CBeteiligte")
    r = await ec.get("/api/v1/CBeteiligte?maxSize=1", headers={"X-Hmac-Authorization": good})
    assert r.status_code == 200
    bad = espo_hmac_header(cfg.ESPO_API_KEY, "wrong-secret", "GET", "CBeteiligte")
    assert (await ec.get("/api/v1/CBeteiligte", headers={"X-Hmac-Authorization": bad})).status_code == 401
    # Signed path must match the request path.
    r = await ec.get("/api/v1/CBeteiligte/abc", headers={"X-Hmac-Authorization": good})
    assert r.status_code == 401


async def test_list_cap_paging_and_no_data_arrays(ec: httpx.AsyncClient, espo: EspoSimulator) -> None:
    total = len(espo.store.records)
    r = await ec.get("/api/v1/CBeteiligte", headers=API)
    body = r.json()
    assert body["total"] == total >= 30
    assert all("emailAddressData" not in row and "phoneNumberData" not in row for row in body["list"])
    assert all("emailAddress" in row and "phoneNumber" in row for row in body["list"])
    r = await ec.get("/api/v1/CBeteiligte", params={"maxSize": 201}, headers=API)
    assert r.status_code == 403
    assert r.headers["X-Status-Reason"] == "Max size should not exceed 200. Use offset and limit."
    assert (await ec.get("/api/v1/CBeteiligte", params={"maxSize": "abc"}, headers=API)).status_code == 400
    r = await ec.get(
        "/api/v1/CBeteiligte",
        headers={**API, "X-No-Total": "true"},
        params={"maxSize": 10, "orderBy": "name"},
    )
    assert r.json()["total"] == -1 and len(r.json()["list"]) == 10
    names = [row["name"] for row in r.json()["list"]]
    assert names == sorted(names)
    r = await ec.get(
        "/api/v1/CBeteiligte",
        headers={**API, "X-No-Total": "true"},
        params={"maxSize": 10, "offset": total - 5},
    )
    assert r.json()["total"] == -2 and len(r.json()["list"]) == 5
    r = await ec.get("/api/v1/CBeteiligte", params={"select": "name,betnr", "maxSize": 3}, headers=API)
    assert all(set(row) == {"id", "name", "betnr"} for row in r.json()["list"])


async def test_get_by_id_has_data_arrays_and_404(ec: httpx.AsyncClient, espo: EspoSimulator) -> None:
    rid = next(iter(espo.store.records))
    rec = (await ec.get(f"/api/v1/CBeteiligte/{rid}", headers=API)).json()
    assert rec["emailAddressData"] and rec["phoneNumberData"]
    assert rec["emailAddressData"][0]["primary"] is True
    r = await ec.get("/api/v1/CBeteiligte/0000000000000dead", headers=API)
    assert r.status_code == 404
    assert r.headers["X-Status-Reason"] == "Record 0000000000000dead not found."


async def test_where_query_string_and_search_params(ec: httpx.AsyncClient, espo: EspoSimulator) -> None:
    linked = espo.store.manifest["linked_equal"][0]
    r = await ec.get(
        "/api/v1/CBeteiligte",
        headers=API,
        params={
            "where[0][type]": "equals",
            "where[0][attribute]": "betnr",
            "where[0][value]": str(linked["betNr"]),
        },
    )
    assert [row["id"] for row in r.json()["list"]] == [linked["id"]]
    r = await ec.get(
        "/api/v1/CBeteiligte",
        headers=API,
        params=[
            ("where[0][type]", "in"),
            ("where[0][attribute]", "syncStatus"),
            ("where[0][value][]", "dirty"),
            ("where[0][value][]", "pending_sync"),
        ],
    )
    assert {row["syncStatus"] for row in r.json()["list"]} == {"dirty", "pending_sync"}
    sp = {"where": [{"type": "isNull", "attribute": "betnr"}], "maxSize": 200}
    r = await ec.get("/api/v1/CBeteiligte", headers=API, params={"searchParams": json.dumps(sp)})
    assert r.json()["total"] == len(espo.store.manifest["espo_only"])
    sp = {
        "where": [{"type": "after", "attribute": "modifiedAt", "value": "2026-02-28 08:00:00"}],
        "orderBy": "modifiedAt",
        "order": "asc",
    }
    rows = (await ec.get("/api/v1/CBeteiligte", headers=API, params={"searchParams": json.dumps(sp)})).json()
    assert rows["list"] and all(row["modifiedAt"] > "2026-02-28 08:00:00" for row in rows["list"])
    assert [row["modifiedAt"] for row in rows["list"]] == sorted(row["modifiedAt"] for row in rows["list"])
    sp = {
        "where": [
            {
                "type": "or",
                "value": [
                    {"type": "equals", "attribute": "syncStatus", "value": "dirty"},
                    {"type": "isNull", "attribute": "betnr"},
                ],
            }
        ]
    }
    r = await ec.get("/api/v1/CBeteiligte", headers=API, params={"searchParams": json.dumps(sp)})
    assert r.json()["total"] == len(espo.store.manifest["espo_only"]) + 2
    sp = {"where": [{"type": "equals", "attribute": "betnr", "value": 1, "bogus": 1}]}
    r = await ec.get("/api/v1/CBeteiligte", headers=API, params={"searchParams": json.dumps(sp)})
    assert r.status_code == 400


async def test_create_update_delete_and_system_attrs(ec: httpx.AsyncClient) -> None:
    r = await ec.post(
        "/api/v1/CBeteiligte",
        headers=API,
        json={
            "id": "ffffffffffffffff1",
            "createdAt": "2000-01-01 00:00:00",
            "modifiedById": "x",
            "firstName": "Jürgen",
            "lastName": "Unikat",
            "salutationName": "Mr.",
            "titel": "Prof. Dr.",
            "beteiligterTyp": "Person",
            "emailAddress": "j.unikat@example.org",
        },
    )
    assert r.status_code == 200
    rec = r.json()
    assert re.fullmatch(r"[0-9a-f]{17}", rec["id"]) and rec["id"] != "ffffffffffffffff1"
    assert rec["name"] == "Jürgen Unikat" and rec["createdAt"] != "2000-01-01 00:00:00"
    assert rec["modifiedById"] == cfg.ESPO_API_USER_ID and DT.match(rec["modifiedAt"])
    assert rec["emailAddressData"][0]["lower"] == "j.unikat@example.org"
    r = await ec.patch(f"/api/v1/CBeteiligte/{rec['id']}", headers=HUMAN, json={"lastName": "Unikat-Müller"})
    assert r.status_code == 200 and r.json()["name"] == "Jürgen Unikat-Müller"
    assert "phoneNumberData" in r.json()  # full record
    r = await ec.put(
        f"/api/v1/CBeteiligte/{rec['id']}", headers=HUMAN, json={"advowareLastSync": "2026-07-01 10:00"}
    )
    assert r.json()["advowareLastSync"] == "2026-07-01 10:00:00"
    r = await ec.delete(f"/api/v1/CBeteiligte/{rec['id']}", headers=API)
    assert r.status_code == 200 and r.json() is True
    assert (await ec.get(f"/api/v1/CBeteiligte/{rec['id']}", headers=API)).status_code == 404


async def test_iso_datetime_and_enum_validation(ec: httpx.AsyncClient, espo: EspoSimulator) -> None:
    rid = next(iter(espo.store.records))
    r = await ec.put(
        f"/api/v1/CBeteiligte/{rid}", headers=API, json={"advowareLastSync": "2026-07-01T10:00:00Z"}
    )
    assert r.status_code == 400
    assert r.headers["X-Status-Reason"] == (
        "Field validation failure; entityType: CBeteiligte, field: advowareLastSync, type: valid."
    )
    assert r.json() == {
        "messageTranslation": {
            "label": "validationFailure",
            "scope": None,
            "data": {"field": "advowareLastSync", "type": "valid"},
        }
    }
    r = await ec.put(f"/api/v1/CBeteiligte/{rid}", headers=API, json={"syncStatus": "bogus"})
    assert r.status_code == 400
    assert r.headers["X-Status-Reason"] == (
        "Field validation failure; entityType: CBeteiligte, field: syncStatus, type: valid."
    )
    r = await ec.put(f"/api/v1/CBeteiligte/{rid}", headers=API, json={"rechtsform": "Limited"})
    assert r.status_code == 400
    r = await ec.put(f"/api/v1/CBeteiligte/{rid}", headers=API, json={"geburtsdatum": "01.02.1970"})
    assert r.status_code == 400


async def test_modified_at_set_on_every_save(ec: httpx.AsyncClient, espo: EspoSimulator) -> None:
    rid = next(iter(espo.store.records))
    before = espo.store.records[rid]["modifiedAt"]
    r = await ec.put(f"/api/v1/CBeteiligte/{rid}", headers=API, json={"modifiedAt": "2000-01-01 00:00:00"})
    assert r.json()["modifiedAt"] != before and r.json()["modifiedAt"] > "2026-01-01"


async def test_email_and_phone_data_semantics(ec: httpx.AsyncClient, espo: EspoSimulator) -> None:
    rid = espo.store.manifest["linked_equal"][1]["id"]
    r = await ec.put(
        f"/api/v1/CBeteiligte/{rid}",
        headers=API,
        json={
            "emailAddressData": [{"emailAddress": "Neu@Example.org"}, {"emailAddress": "zwei@example.org"}]
        },
    )
    data = r.json()["emailAddressData"]
    assert [(d["emailAddress"], d["lower"], d["primary"]) for d in data] == [
        ("Neu@Example.org", "neu@example.org", True),
        ("zwei@example.org", "zwei@example.org", False),
    ]
    assert r.json()["emailAddress"] == "Neu@Example.org"
    r = await ec.put(f"/api/v1/CBeteiligte/{rid}", headers=API, json={"emailAddress": "drei@example.org"})
    assert [d["emailAddress"] for d in r.json()["emailAddressData"]] == [
        "drei@example.org",
        "zwei@example.org",
    ]
    r = await ec.put(
        f"/api/v1/CBeteiligte/{rid}",
        headers=API,
        json={
            "phoneNumberData": [
                {"phoneNumber": "+49 30 1", "type": "Office"},
                {"phoneNumber": "+49 171 2", "type": "Mobile", "primary": True},
            ]
        },
    )
    assert r.json()["phoneNumber"] == "+49 171 2"
    r = await ec.put(
        f"/api/v1/CBeteiligte/{rid}",
        headers=API,
        json={"phoneNumberData": [{"phoneNumber": "+49 30 1", "type": "Pager"}]},
    )
    assert r.status_code == 400


async def test_duplicate_check(ec: httpx.AsyncClient, espo: EspoSimulator) -> None:
    existing = next(iter(espo.store.records.values()))
    r = await ec.post(
        "/api/v1/CBeteiligte", headers=API, json={"name": existing["name"], "beteiligterTyp": "Firma"}
    )
    assert r.status_code == 409 and r.headers["X-Status-Reason"] == "duplicate"
    assert r.json()[0]["id"] == existing["id"]
    r = await ec.post(
        "/api/v1/CBeteiligte",
        headers=API,
        json={"name": "Neu GmbH", "beteiligterTyp": "Firma", "emailAddress": existing["emailAddress"]},
    )
    assert r.status_code == 409
    r = await ec.post(
        "/api/v1/CBeteiligte",
        headers={**API, "X-Skip-Duplicate-Check": "true"},
        json={"name": existing["name"], "beteiligterTyp": "Firma"},
    )
    assert r.status_code == 200


async def test_webhook_subscribe_and_delete(ec: httpx.AsyncClient, espo: EspoSimulator) -> None:
    r = await ec.post(
        "/api/v1/Webhook",
        headers=API,
        json={"event": "CBeteiligte.update", "url": "http://127.0.0.1:9/x", "skipOwn": True},
    )
    assert r.status_code == 201
    wh = r.json()
    assert re.fullmatch(r"[0-9a-f]{32}", wh["secretKey"]) and wh["userId"] == cfg.ESPO_API_USER_ID
    assert wh["skipOwn"] is True
    assert (await ec.delete(f"/api/v1/Webhook/{wh['id']}", headers=API)).json() is True
    assert wh["id"] not in espo.dispatcher.webhooks
    assert (await ec.delete(f"/api/v1/Webhook/{wh['id']}", headers=API)).status_code == 404


async def test_notification_refused_note_mention_recorded(ec: httpx.AsyncClient, espo: EspoSimulator) -> None:
    r = await ec.post(
        "/api/v1/Notification",
        headers=API,
        json={"type": "Message", "userId": cfg.ESPO_HUMAN_USER_ID, "message": "x"},
    )
    assert r.status_code == 403 and r.headers["X-Status-Reason"] == "No create access."
    rid = next(iter(espo.store.records))
    r = await ec.post(
        "/api/v1/Note",
        headers=API,
        json={
            "type": "Post",
            "parentType": "CBeteiligte",
            "parentId": rid,
            "post": "@anna.admin Bitte prüfen",
        },
    )
    assert r.status_code == 200
    notes = (await ec.get("/api/v1/Note", headers=API, params={"parentId": rid})).json()["list"]
    assert notes[0]["post"] == "@anna.admin Bitte prüfen"
    own = (await ec.get("/api/v1/Notification", headers=HUMAN)).json()["list"]
    assert own[0]["type"] == "MentionInPost" and own[0]["relatedParentId"] == rid
    dump = (await ec.get("/__sandbox/notes")).json()
    assert len(dump["notes"]) == 1 and len(dump["notifications"]) == 1
