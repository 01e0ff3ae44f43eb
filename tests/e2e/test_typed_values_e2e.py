"""End to end (real Motia, real Redis, sandbox simulators): nothing a person typed is dropped.

A CRM phone entry EspoCRM accepts but the sync cannot read (an extension, a remark) is never
synced; when an Advoware-side phone change makes the sync rewrite `phoneNumberData`, the entry
stays in EspoCRM exactly as typed. A person's edit back to an earlier value (A -> B -> A) sends
a webhook body with the first one's bytes; it is a new edit, not a redelivery."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sandbox.act import Actor
from tests.support.stack import Stack, espo_create, espo_get, wait_linked, wait_until
from tests.support.sweep_cost import hold_cron

pytestmark = pytest.mark.e2e
ADMIN = {"Authorization": "Bearer sandbox-admin-token"}
EXTENSION = "030 1234-56 App. 7"
REMARK = "0171 2345678 nur abends"


def _phones(record: dict[str, Any]) -> list[tuple[str, str, bool]]:
    return sorted((p["phoneNumber"], p["type"], p["primary"]) for p in record["phoneNumberData"])


def _change_advoware_phone(actor: Actor, betnr: int, old: str, new: str) -> None:
    """A person in Advoware replaces one number (GET, change, full PUT)."""
    rec = actor.advo_call("GET", f"Beteiligte/{betnr}").json()
    for ro in ("betNr", "geaendertAm", "angelegtAm"):
        rec.pop(ro, None)
    entries = rec["kommunikation"]
    assert any(k["tlf"] == old for k in entries), entries
    rec["kommunikation"] = [dict(k, tlf=new) if k["tlf"] == old else k for k in entries]
    actor.advo_call("PUT", f"Beteiligte/{betnr}", json=rec).raise_for_status()


def test_unreadable_crm_phone_entries_survive_an_advoware_phone_change(stack: Stack, actor: Actor) -> None:
    hold_cron(stack)  # only our own sweep brings the Advoware change across
    rid = espo_create(
        actor,
        {
            "beteiligterTyp": "Person",
            "salutationName": "Mr.",
            "firstName": "Tobias",
            "lastName": "Durchwahl",
            "phoneNumberData": [
                {"phoneNumber": "+49 89 1234567", "type": "Mobile", "primary": True},
                {"phoneNumber": EXTENSION, "type": "Office", "primary": False},
                {"phoneNumber": REMARK, "type": "Home", "primary": False},
            ],
        },
    )
    betnr = wait_linked(actor, rid)["betnr"]
    advo = actor.advo_call("GET", f"Beteiligte/{betnr}").json()
    assert [k["tlf"] for k in advo["kommunikation"]] == ["+49 89 1234567"]  # never synced
    _change_advoware_phone(actor, betnr, "+49 89 1234567", "+49 89 7654321")
    resp = httpx.post(f"{stack.motia_url}/vmh/beteiligte/sync/sweep", headers=ADMIN, timeout=60)
    assert resp.status_code == 200, resp.text
    assert resp.json()["by_source"]["advoware_changed"] >= 1, resp.text
    wait_until(
        lambda: any(p["phoneNumber"] == "+49 89 7654321" for p in espo_get(actor, rid)["phoneNumberData"]),
        timeout=120,  # the first sweep of a fresh stack also works through the demo records
        message="the Advoware phone change in EspoCRM",
    )
    wait_until(lambda: espo_get(actor, rid)["syncStatus"] == "clean", message="clean")
    assert _phones(espo_get(actor, rid)) == sorted(
        [("+49 89 7654321", "Mobile", True), (EXTENSION, "Office", False), (REMARK, "Home", False)]
    )
    assert "App. 7" not in stack.log_text("motia") and "nur abends" not in stack.log_text("motia")


def _signed_update(items: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
    """An update-webhook body as EspoCRM sends it (PHP JSON), signed with the update secret."""
    import json

    from sandbox.signing import webhook_signature
    from tests.support.processes import PROJECT_ROOT
    from tests.support.stack import read_dotenv

    sandbox = read_dotenv(PROJECT_ROOT / "sandbox" / "sandbox.env")
    secrets = dict(pair.split(":", 1) for pair in sandbox["ESPOCRM_WEBHOOK_SECRETS"].split(","))
    webhook_id = next(i for i, s in secrets.items() if "update" in s)
    raw = json.dumps(items, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()
    headers = {
        "Content-Type": "application/json",
        "Signature": webhook_signature(webhook_id, secrets[webhook_id], raw),
    }
    return raw, headers


def _deliver(stack: Stack, items: list[dict[str, Any]]) -> dict[str, Any]:
    raw, headers = _signed_update(items)
    resp = httpx.post(
        f"{stack.motia_url}/vmh/webhook/beteiligte/update", content=raw, headers=headers, timeout=30
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_an_edit_back_to_an_earlier_value_is_not_taken_for_a_redelivery(stack: Stack, actor: Actor) -> None:
    """A -> B -> A in EspoCRM: the third webhook body has the first one's bytes; it is a new edit
    and reaches Advoware (no sweep runs here: only the webhook path can bring it)."""
    hold_cron(stack)
    rid = espo_create(actor, {"beteiligterTyp": "Person", "salutationName": "Ms.", "lastName": "Hinundher"})
    betnr = wait_linked(actor, rid)["betnr"]
    httpx.post(f"{stack.espo_url}/__sandbox/webhooks/settings", json={"paused": True}, timeout=30)
    try:
        for titel in ("Dr.", "Prof.", "Dr."):
            actor.espo.put(f"CBeteiligte/{rid}", json={"titel": titel}).raise_for_status()
            answer = _deliver(stack, [{"titel": titel, "id": rid}])
            assert answer == {"accepted": 1}, (titel, answer)
            wait_until(
                lambda t=titel: actor.advo_call("GET", f"Beteiligte/{betnr}").json()["titel"] == t,
                timeout=60,
                message=f"titel {titel} in Advoware",
            )
            wait_until(lambda: espo_get(actor, rid)["syncStatus"] == "clean", message="clean")
    finally:
        httpx.post(f"{stack.espo_url}/__sandbox/webhooks/settings", json={"paused": False}, timeout=30)
