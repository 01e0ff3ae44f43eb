"""End to end: the ops commands, the first-run backfill and the Advoware poll on the real stack.

This module runs its own stacks (the backfill links and creates everything it finds, which
would disturb other tests on the shared one): stack A with the demo data and without
EspoCRM webhooks (records created here for the scenarios must not be synced behind the
backfill's back), and a stack with 1,000 synthetic pairs for the sweep's cost. The cron sweep
is held off in both (`hold_cron`); sweeps run only when a test asks for one.

Tests in the backfill section build on each other in file order: dry run, interrupted run,
resumed run, no-op rerun.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox import config as cfg
from sandbox.act import Actor
from services.beteiligte.identity import Identity, identity_of_advo, identity_of_espo
from tests.support.processes import PROJECT_ROOT, stop_process_group
from tests.support.stack import PY, Stack, espo_create, espo_get, run_stack, wait_until
from tests.support.sweep_cost import (
    ADMIN,
    edit_advoware,
    hold_cron,
    log_seq,
    measure,
    ops,
    primed_stack,
    service_calls,
    summarise,
    sweep,
    wait_quiet,
)

pytestmark = pytest.mark.e2e


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def stack_a(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Short record locks: a killed backfill's locks expire in seconds, not minutes.
    with run_stack(
        tmp_path_factory.mktemp("ops-stack"),
        sandbox_args=["--no-webhooks"],
        extra_env={"SYNC_LOCK_TTL_SECONDS": "4"},
    ) as s:
        hold_cron(s)
        yield s


@pytest.fixture(scope="module")
def actor(stack_a: Stack) -> Actor:
    return Actor(stack_a.espo_url, stack_a.advo_url)


def dump(base: str) -> dict[str, Any]:
    return httpx.get(f"{base}/__sandbox/records", timeout=30).json()


def variant(text: str | None) -> str | None:
    """How another person might have typed it: umlauts spelled out, other case and spacing."""
    if text is None:
        return None
    for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), ("Ä", "Ae"), ("Ö", "Oe"), ("Ü", "Ue")):
        text = text.replace(a, b)
    return "  " + text.upper().replace(" ", "  ") + " "


@pytest.fixture(scope="module")
def scenario(stack_a: Stack, actor: Actor) -> dict[str, Any]:
    """On top of the demo data (26 linked pairs, 7 EspoCRM-only, 6 Advoware-only):
    two pre-existing pairs without betnr (EspoCRM copies of Advoware-only records, typed
    differently) and one ambiguous case (one EspoCRM, two Advoware records of that name)."""
    advo = dump(stack_a.advo_url)
    manifest = advo["manifest"]
    records = {r["betNr"]: r for r in advo["records"]}
    pairs: dict[str, int] = {}
    for entry in manifest["advo_only"][:2]:
        a = records[entry["betNr"]]
        email = next((k["tlf"] for k in a["kommunikation"] if "@" in k["tlf"]), None)
        if a.get("anrede") == "Firma":
            body = {
                "beteiligterTyp": "Firma",
                "name": variant(a["name"]),
                "rechtsform": a.get("rechtsform") or "",
            }
            body |= {
                "handelsregisterNummer": a.get("handelsRegisterNummer"),
                "registergericht": a.get("registergericht"),
            }
        else:
            body = {
                "beteiligterTyp": "Person",
                "firstName": variant(a["vorname"]),
                "lastName": variant(a["name"]),
            }
            body["geburtsdatum"] = a.get("geburtsdatum")
        if email:
            body["emailAddress"] = email.upper()
        pairs[espo_create(actor, body)] = a["betNr"]
    twins = []
    for i in (1, 2):
        twin: dict[str, Any] = {
            "anrede": "Frau",
            "vorname": "Eva",
            "name": "Zwillingsfall",
            "kommunikation": [],
        }
        twin["kommunikation"] = [
            {"kommKz": 8, "tlf": f"eva{i}@example.net", "bemerkung": None, "online": False}
        ]
        twins.append(actor.advo_call("POST", "Beteiligte", json=twin).json()["betNr"])
    ambiguous = espo_create(
        actor,
        {
            "beteiligterTyp": "Person",
            "firstName": "Eva",
            "lastName": "Zwillingsfall",
            "emailAddress": "eva@example.org",
        },
    )
    return {
        "manifest": manifest,
        "pairs": pairs,
        "ambiguous": ambiguous,
        "twins": twins,
        "advo_only_left": [e["betNr"] for e in manifest["advo_only"][2:]],
        "espo_only": [e["id"] for e in manifest["espo_only"]],
    }


def cli(stack: Stack, *args: str) -> tuple[int, Any, str]:
    done = ops(stack, "--json", *args, timeout=300)
    try:
        data = json.loads(done.stdout) if done.stdout.strip() else None
    except ValueError:
        data = done.stdout
    return done.returncode, data, done.stderr


def marks(stack: Stack) -> tuple[int, int]:
    return log_seq(stack.espo_url), log_seq(stack.advo_url)


def calls_since(stack: Stack, mark: tuple[int, int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return service_calls(stack.espo_url, mark[0]), service_calls(stack.advo_url, mark[1])


def writes(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in calls if c["method"] != "GET" and not c["path"].endswith("/api/v1/Token")]


def advo_identities(stack: Stack) -> Counter[Identity]:
    return Counter(identity_of_advo(r) for r in dump(stack.advo_url)["records"])


# --------------------------------------------------------------------------- steps and status


def test_ops_steps_are_registered_and_status_works(stack_a: Stack) -> None:
    log = stack_a.log_text("motia")
    for step in ("ops_sync_record_api_step.py", "ops_retry_failed_api_step.py", "ops_unlock_api_step.py"):
        assert f"steps/vmh/{step} registered" in log, step
    done = ops(stack_a, "status")
    assert done.returncode == 0, done.stderr
    assert (
        "Sync status" in done.stdout
        and "pending_sync" in done.stdout
        and "Backfill: never run" in done.stdout
    )
    for path in ("record", "retry-failed", "unlock"):
        assert (
            httpx.post(
                f"{stack_a.motia_url}/vmh/beteiligte/sync/{path}", json={"id": "x"}, timeout=30
            ).status_code
            == 401
        )


# --------------------------------------------------------------------------- backfill


def test_backfill_dry_run_shows_the_plan_and_writes_nothing(stack_a: Stack, scenario: dict[str, Any]) -> None:
    mark = marks(stack_a)
    code, result, err = cli(stack_a, "backfill", "--dry-run")
    assert code == 0, err
    espo_calls, advo_calls = calls_since(stack_a, mark)
    assert espo_calls and advo_calls
    assert writes(espo_calls) == [] and writes(advo_calls) == []  # only GETs (and a token)
    c = result["counts"]
    assert result["dry_run"] and c["linked_by_betnr"] == 26 and c["conflicts"] == 0
    assert {(x["espo_id"], x["betnr"]) for x in result["linked_by_identity"]} == set(
        scenario["pairs"].items()
    )
    assert sorted(result["espo_only"]) == sorted(scenario["espo_only"])
    assert sorted(result["advo_only"]) == sorted(scenario["advo_only_left"])
    assert [(a["espo_ids"], a["betnrs"]) for a in result["ambiguous"]] == [
        ([scenario["ambiguous"]], scenario["twins"])
    ]
    # What would be updated, field by field: the six pairs that differ, each towards the side
    # that was not changed since the last sync.
    updates = {u["espo_id"]: u for u in result["updates"]}
    for entry in scenario["manifest"]["linked_diff"]:
        if entry["changed"] == "advo:zusatz":  # not a synced field: nothing to write
            assert entry["id"] not in updates
            continue
        plan = updates[entry["id"]]
        changed_side = entry["changed"].split(":")[0]
        assert plan["to_espo"] if changed_side == "advo" else plan["to_advo"], entry
        assert not plan["conflicts"], entry
    # Nothing changed in either system.
    assert all(
        r.get("betnr") is None for r in dump(stack_a.espo_url)["records"] if r["id"] in scenario["espo_only"]
    )


def test_interrupted_backfill_resumes_without_duplicates(
    stack_a: Stack, actor: Actor, scenario: dict[str, Any]
) -> None:
    before = advo_identities(stack_a)
    n_before = len(dump(stack_a.advo_url)["records"])
    # Slow creates down, so the run can be killed in the middle of them.
    fault = {
        "kind": "latency",
        "latency_ms": 1200,
        "next_n": None,
        "match": {"method": "POST", "path": "/advonet/Beteiligte$"},
    }
    httpx.post(f"{stack_a.advo_url}/__sandbox/faults", json=fault).raise_for_status()
    mark = marks(stack_a)
    proc = subprocess.Popen(
        [PY, "-m", "services.ops", "--json", "backfill", "--concurrency", "2"],
        cwd=PROJECT_ROOT,
        env=stack_a.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: sum(
                1 for c in calls_since(stack_a, mark)[1] if c["method"] == "POST" and c["status"] == 201
            )
            >= 2,
            timeout=90,
            message="two creates",
        )
    finally:
        os.killpg(os.getpgid(proc.pid), signal.SIGKILL)  # a crash, not a clean stop
        proc.wait(timeout=10)
        stop_process_group(proc)
        httpx.delete(f"{stack_a.advo_url}/__sandbox/faults").raise_for_status()

    code, result, err = cli(stack_a, "backfill")
    assert code == 0, err
    assert result["resumed"] and result["finished"] and result["already_done"] >= 2
    # Every EspoCRM-only record exists exactly once in Advoware, and is linked to it.
    espo = {r["id"]: r for r in dump(stack_a.espo_url)["records"]}
    after = advo_identities(stack_a)
    for rid in scenario["espo_only"]:
        assert espo[rid]["betnr"] and espo[rid]["syncStatus"] == "clean", rid
        assert after[identity_of_espo(espo[rid])] == 1, rid
    assert len(dump(stack_a.advo_url)["records"]) == n_before + len(scenario["espo_only"])
    assert all(after[k] - before.get(k, 0) <= 1 for k in after)
    creates = [c for c in calls_since(stack_a, mark)[1] if c["method"] == "POST" and c["status"] == 201]
    assert len(creates) == len(scenario["espo_only"])
    # Pre-existing pairs were linked, not created; the ambiguous record is held for a person.
    for rid, betnr in scenario["pairs"].items():
        assert espo[rid]["betnr"] == betnr and espo[rid]["syncStatus"] == "clean"
    held = espo[scenario["ambiguous"]]
    assert held["syncStatus"] == "conflict" and held["betnr"] is None
    assert held["syncErrorMessage"].startswith("Backfill:")
    # Advoware-only records were reported, not copied; nothing was ever deleted.
    linked = {r["betnr"] for r in espo.values() if r.get("betnr")}
    assert not linked & set(scenario["advo_only_left"])
    assert httpx.get(f"{stack_a.advo_url}/__sandbox/deleted").json() in ([], {"deleted": []})


def test_backfill_rerun_writes_nothing(stack_a: Stack) -> None:
    mark = marks(stack_a)
    code, result, err = cli(stack_a, "backfill")
    assert code == 0, err
    assert result["finished"] and not result["resumed"]
    c = result["counts"]
    assert c["to_link"] == c["to_sync"] == c["to_create_in_advoware"] == c["to_hold"] == 0
    espo_calls, advo_calls = calls_since(stack_a, mark)
    assert writes(espo_calls) == [] and writes(advo_calls) == []


# --------------------------------------------------------------------------- one record, retry, API


def test_cli_sync_dry_run_then_sync(stack_a: Stack, actor: Actor, scenario: dict[str, Any]) -> None:
    entry = scenario["manifest"]["linked_equal"][1]
    rid, betnr = entry["id"], entry["betNr"]
    edit_advoware(actor, [betnr], "Prof. Dr. h.c.")
    mark = marks(stack_a)
    code, plan, err = cli(stack_a, "sync", rid, "--dry-run")
    assert code == 0, err
    assert plan["action"] == "update" and plan["basis"] == "snapshot"
    assert [(f["field"], f["advoware"], f["direction"]) for f in plan["fields"]] == [
        ("title", "Prof. Dr. h.c.", "to_espocrm")
    ]
    assert writes(calls_since(stack_a, mark)[0]) == [] and writes(calls_since(stack_a, mark)[1]) == []
    text = ops(stack_a, "sync", "--betnr", str(betnr), "--dry-run").stdout
    assert "title" in text and "Prof. Dr. h.c." in text and "-> EspoCRM" in text
    code, out, err = cli(stack_a, "sync", "--betnr", str(betnr))
    assert code == 0, err
    assert out["result"] == "updated" and out["to_espocrm"] == ["title"]
    assert espo_get(actor, rid)["titel"] == "Prof. Dr. h.c."


def test_sync_record_api(stack_a: Stack, scenario: dict[str, Any]) -> None:
    entry = scenario["manifest"]["linked_equal"][2]
    url = f"{stack_a.motia_url}/vmh/beteiligte/sync/record"
    mark = marks(stack_a)
    resp = httpx.post(url, headers=ADMIN, json={"betnr": entry["betNr"], "dryRun": True}, timeout=60)
    assert resp.status_code == 200, resp.text
    assert resp.json()["action"] == "none" and resp.json()["id"] == entry["id"]
    assert writes(calls_since(stack_a, mark)[0]) == [] and writes(calls_since(stack_a, mark)[1]) == []
    assert httpx.post(url, headers=ADMIN, json={"betnr": 999}, timeout=60).status_code == 404
    assert httpx.post(url, headers=ADMIN, json={"id": "a", "betnr": 1}, timeout=60).status_code == 400


def test_retry_failed_api_requeues_and_syncs(stack_a: Stack, actor: Actor, scenario: dict[str, Any]) -> None:
    rid = scenario["manifest"]["linked_equal"][3]["id"]
    actor.espo.put(
        f"CBeteiligte/{rid}",
        json={"syncStatus": "permanently_failed", "syncRetryCount": 8, "syncErrorMessage": "drill"},
    ).raise_for_status()
    resp = httpx.post(
        f"{stack_a.motia_url}/vmh/beteiligte/sync/retry-failed", headers=ADMIN, json={}, timeout=60
    )
    assert resp.status_code == 200, resp.text
    assert rid in resp.json()["requeued"] and resp.json()["events"] >= 1
    rec = wait_until(
        lambda: (r := espo_get(actor, rid))["syncStatus"] == "clean" and r, message="clean again"
    )
    assert rec["syncRetryCount"] == 0 and not rec["syncErrorMessage"]


# --------------------------------------------------------------------------- the Advoware poll


def test_advoware_edit_reaches_espocrm_after_exactly_one_sweep(
    stack_a: Stack, actor: Actor, scenario: dict[str, Any]
) -> None:
    sweep(stack_a)  # settle: the backfill's and the tests' own writes are read once
    wait_quiet(stack_a)
    entry = scenario["manifest"]["linked_equal"][4]
    rid, betnr = entry["id"], entry["betNr"]
    edit_advoware(actor, [betnr], "Dr. rer. nat.")
    time.sleep(1.1)
    mark = marks(stack_a)
    summary, _secs = sweep(stack_a)
    assert summary["by_source"]["advoware_changed"] == 1, summary
    wait_until(
        lambda: espo_get(actor, rid)["titel"] == "Dr. rer. nat.", timeout=30, message="edit in EspoCRM"
    )
    wait_quiet(stack_a)
    espo_calls, advo_calls = calls_since(stack_a, mark)
    calls = summarise(espo_calls, advo_calls)
    # One page of changes and the empty page that closes it (the adapter ends a listing only on
    # an empty page, so a server that caps pages still yields everything): never the database.
    advo_lists = [c for c in advo_calls if c["method"] == "GET" and c["path"].endswith("/Beteiligte")]
    assert calls["list"]["advoware"] == len(advo_lists) == 2, advo_lists
    assert all("geaendertAb=" in c["query"] for c in advo_lists), advo_lists
    assert calls["list"]["espocrm"] <= 8  # the status queries and the EspoCRM poll, one page each
    # The record itself: GET on both sides, the EspoCRM write (+ the syncing mirror).
    assert sum(1 for c in espo_calls if c["path"].endswith(f"/{rid}")) == 3
    assert [c["method"] for c in advo_calls if c["path"].endswith(f"/{betnr}")] == ["GET"]
    assert [c["path"] for c in writes(espo_calls + advo_calls)] == [f"/api/v1/CBeteiligte/{rid}"] * 2


# --------------------------------------------------------------------------- cost


def test_sweep_cost_grows_with_changes_not_with_the_database(tmp_path: Path) -> None:
    """1,000 linked pairs: a sweep finding 10 Advoware changes against one finding 100. A sweep
    that listed either database would need 10 Advoware / 5 EspoCRM pages for the list alone."""
    n = 1000
    with primed_stack(n, tmp_path, settle="skip") as (stack, actor, _info):
        small = measure(
            stack, actor, n, list(range(cfg.ADVO_FIRST_BETNR, cfg.ADVO_FIRST_BETNR + 10)), "Dr. A"
        )
        big = measure(
            stack, actor, n, list(range(cfg.ADVO_FIRST_BETNR + 10, cfg.ADVO_FIRST_BETNR + 110)), "Dr. B"
        )
    for result, changed in ((small, 10), (big, 100)):
        calls = result["calls"]
        assert result["sweep_summary"]["by_source"]["advoware_changed"] == changed, result
        assert calls["list"]["advoware"] <= changed // 100 + 2  # pages of changes only (10 = everything)
        assert calls["list"]["espocrm"] == 7  # 6 status queries + the EspoCRM poll: constant
        assert calls["record"]["advoware"] == changed  # one GET per changed record
        assert calls["record"]["espocrm"] <= 3 * changed
    assert small["calls"]["total"] <= 60  # a small constant for 10 changes in 1,000 records
    # Ten times the changes cost about ten times the per-record calls, and the same list calls.
    assert big["sweep_list_calls"] - small["sweep_list_calls"] <= 2
    assert 8 <= big["record_calls"] / small["record_calls"] <= 12
