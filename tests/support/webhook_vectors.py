"""The webhook intake's vectors (tests/support/webhook_vectors.json): one file, run against the
Python intake (tests/unit/test_webhook_vectors.py) and the Node port gate
(tests/unit/test_port_gate.py), so the two implementations give the same answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VECTORS_FILE = Path(__file__).with_name("webhook_vectors.json")


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS_FILE.read_text())
    return data


def body(case: dict[str, Any]) -> bytes:
    """The request body of a case, as bytes."""
    if "body_hex" in case:
        return bytes.fromhex(case["body_hex"])
    if "body_fill" in case:
        fill = case["body_fill"]
        return (fill["prefix"] + fill["text"] * fill["times"] + fill["suffix"]).encode()
    return str(case["body"]).encode()


def expected(case: dict[str, Any]) -> dict[str, Any]:
    """The answer both implementations must give: status, error text, accepted ids."""
    return {"status": case["status"], "error": case["error"], "ids": case.get("ids")}
