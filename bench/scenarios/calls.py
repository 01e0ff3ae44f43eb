"""The service's API calls in a simulator's call log (its users only, never the benchmark's)."""

from __future__ import annotations

from typing import Any

from tests.support.sweep_cost import SERVICE_USERS, WRITE_METHODS


def service_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in calls if c.get("user") in SERVICE_USERS]


def count_calls(calls: list[dict[str, Any]]) -> dict[str, int]:
    """Service calls by kind: token, reads, writes (per side the caller already chose)."""
    out = {"token": 0, "reads": 0, "writes": 0, "total": 0}
    for c in service_calls(calls):
        out["total"] += 1
        if c["path"].endswith("/Token"):
            out["token"] += 1
        elif c["method"] in WRITE_METHODS:
            out["writes"] += 1
        else:
            out["reads"] += 1
    return out
