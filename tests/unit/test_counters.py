"""The one counters path (services/store/counters.py): everything counted goes through `Metrics`
by a name of its enums; nothing else in services/ touches the counter hashes."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import fakeredis

from services.store import keys
from services.store.counters import MetricName, Metrics, Stat, counter_value

ROOT = Path(__file__).resolve().parents[2]
COUNTERS = ROOT / "services" / "store" / "counters.py"
# The notifier's one atomic claim-and-count script (its counter names arrive typed as `Stat`).
NOTIFY = ROOT / "services" / "sync" / "notify.py"


def _names_counter_hash(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in ("STATS", "METRICS")
        and isinstance(node.value, ast.Name)
        and node.value.id == "keys"
    ]


def test_only_the_counters_module_writes_the_counter_hashes() -> None:
    found = [
        hit
        for path in sorted((ROOT / "services").rglob("*.py"))
        if path not in (COUNTERS, NOTIFY) and path.name != "keys.py"
        for hit in _names_counter_hash(path)
    ]
    assert found == [], f"count through services/store/counters.py `Metrics`, not the hash: {found}"
    assert len(_names_counter_hash(NOTIFY)) == 1  # the script's keys, nothing counted beside it


async def test_counts_and_observations_reach_their_hashes_by_their_names() -> None:
    redis: Any = fakeredis.FakeAsyncRedis(decode_responses=True)
    metrics = Metrics(redis)
    await metrics.count(Stat.CONFLICTS, 2)
    await metrics.count(Stat.NOTIFICATIONS)
    # `count` is written at once (a handler that dies later keeps it); `inc` waits for flush().
    assert await redis.hgetall(keys.STATS) == {"conflicts": "2", "notifications": "1"}
    metrics.notice("sent")
    assert await counter_value(redis, MetricName.NOTICES, result="sent") == 0
    await metrics.flush()
    assert await counter_value(redis, MetricName.NOTICES, result="sent") == 1
    assert await metrics.stats() == {"conflicts": 2, "notifications": 1}
