"""The load test's two halves, for the e2e test (tests/e2e/test_port_gate.py) and bench figure 8:
a bounded flood of unsigned webhook requests (tests/support/flood.mjs, loopback only) and a
person's EspoCRM edit timed until Advoware holds it."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from sandbox.act import Actor
from tests.support.processes import PROJECT_ROOT
from tests.support.stack import espo_create, wait_linked

FLOOD_SCRIPT = PROJECT_ROOT / "tests" / "support" / "flood.mjs"
WEBHOOK = "/vmh/webhook/beteiligte/update"


class Flood:
    """`seconds` of unsigned POSTs to the update webhook, `in_flight` at a time, in a node
    process of its own; `result()` waits for it (it stops by itself) and returns its figures."""

    def __init__(self, motia_url: str, seconds: float, in_flight: int = 20) -> None:
        self.seconds = seconds
        self.proc = subprocess.Popen(
            ["node", str(FLOOD_SCRIPT), motia_url + WEBHOOK, str(seconds), str(in_flight)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def result(self) -> dict[str, Any]:
        out, err = self.proc.communicate(timeout=self.seconds + 30)
        assert self.proc.returncode == 0, err
        figures: dict[str, Any] = json.loads(out)
        return figures


def linked_person(actor: Actor, last_name: str) -> tuple[str, int]:
    """A person created in EspoCRM and synced to Advoware: (EspoCRM id, betnr)."""
    body = {"beteiligterTyp": "Person", "salutationName": "Mr.", "firstName": "Fritz", "lastName": last_name}
    record = wait_linked(actor, espo_create(actor, body), timeout=120)
    return str(record["id"]), int(record["betnr"])


def edit_seconds(actor: Actor, rid: str, betnr: int, titel: str, timeout: float = 60) -> float | None:
    """A person sets `titel` in EspoCRM (the sandbox sends the signed webhook as EspoCRM does);
    seconds until Advoware's record holds it, or None after `timeout`."""
    start = time.monotonic()
    actor.espo.put(f"CBeteiligte/{rid}", json={"titel": titel}).raise_for_status()
    while time.monotonic() - start < timeout:
        if actor.advo_call("GET", f"Beteiligte/{betnr}").json().get("titel") == titel:
            return time.monotonic() - start
        time.sleep(0.05)
    return None
