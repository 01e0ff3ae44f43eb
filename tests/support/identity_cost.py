"""What the identity index and the identity check cost in API calls, measured on the real stack
(Motia + Redis + simulators), from the simulators' call logs (the service's users only).

    python_modules/bin/python -m tests.support.identity_cost --records 1000

1. build: the index forgotten (as on a first start), one sweep builds it and finds nothing else;
2. a create of a new party (webhook): the calls of its sync;
3. a create of a party that already exists in Advoware (webhook): the calls of its link + first sync;
4. a sweep with the index ready and nothing to do, and one after 10 Advoware edits: the index adds
   no call to a sweep (it is fed from the rows the change poll reads anyway).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import redis

from sandbox.act import Actor
from services.store import keys
from tests.support.stack import Stack, run_stack, wait_until
from tests.support.sweep_cost import edit_advoware, hold_cron, log_seq, ops, service_calls, sweep, wait_quiet


def routes(stack: Stack, marks: tuple[int, int]) -> dict[str, Any]:
    espo = service_calls(stack.espo_url, marks[0])
    advo = service_calls(stack.advo_url, marks[1])
    by: Counter[str] = Counter()
    for system, calls in (("espocrm", espo), ("advoware", advo)):
        for c in calls:
            if not c["path"].endswith("/Token"):
                by[f"{system} {c['method']} {c['route']}"] += 1
    return {"espocrm": len(espo), "advoware": len(advo), "by_route": dict(sorted(by.items()))}


def mark(stack: Stack) -> tuple[int, int]:
    return log_seq(stack.espo_url), log_seq(stack.advo_url)


def create_and_wait(stack: Stack, actor: Actor, body: dict[str, Any]) -> dict[str, Any]:
    m = mark(stack)
    rid = actor.espo.post("CBeteiligte", json=body, headers={"X-Skip-Duplicate-Check": "true"}).json()["id"]
    wait_until(
        lambda: actor.espo.get(f"CBeteiligte/{rid}").json().get("syncStatus") == "clean",
        timeout=120,
        message="create synced",
    )
    wait_quiet(stack)
    return routes(stack, m)


def measure(records: int, log_dir: Path) -> dict[str, Any]:
    with run_stack(log_dir, sandbox_args=["--records", str(records), "--no-demo"]) as stack:
        hold_cron(stack)
        actor = Actor(stack.espo_url, stack.advo_url)
        done = ops(stack, "backfill")
        assert done.returncode == 0, done.stderr
        sweep(stack)
        wait_quiet(stack)
        out: dict[str, Any] = {"advoware_parties": records}
        r = redis.Redis.from_url(stack.redis_url)
        r.delete(keys.IDENTITY_STATE, keys.IDENTITY_ENTRIES, *list(r.scan_iter(keys.identity_lookup("*"))))
        m = mark(stack)
        sweep(stack)
        wait_quiet(stack)
        out["build_in_a_sweep"] = routes(stack, m)
        stem = uuid.uuid4().hex[:6]
        out["create_new_party"] = create_and_wait(
            stack, actor, {"beteiligterTyp": "Person", "firstName": "Neu", "lastName": f"Kunde{stem}",
                           "geburtsdatum": "1980-01-01"},
        )  # fmt: skip
        actor.advo_call("POST", "Beteiligte", json={"rechtsform": None, "anrede": "Frau", "vorname": "Alt",
                                                    "name": f"Kundin{stem}", "geburtsdatum": "1970-01-01",
                                                    "kommunikation": []})  # fmt: skip
        out["create_existing_party"] = create_and_wait(
            stack, actor, {"beteiligterTyp": "Person", "firstName": "Alt", "lastName": f"Kundin{stem}",
                           "geburtsdatum": "1970-01-01"},
        )  # fmt: skip
        m = mark(stack)
        sweep(stack)
        wait_quiet(stack)
        out["sweep_nothing_to_do"] = routes(stack, m)
        betnrs = [int(x["betNr"]) for x in actor.advo_call("GET", "Beteiligte", params={"take": 10}).json()]
        edit_advoware(actor, betnrs, f"Dr. {stem}")
        m = mark(stack)
        sweep(stack)
        wait_quiet(stack)
        out["sweep_after_10_advoware_edits"] = routes(stack, m)
        out["index_entries"] = r.hlen(keys.IDENTITY_ENTRIES)
        r.close()
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(measure(args.records, Path(tmp)), indent=2))


if __name__ == "__main__":
    main()
