"""Who may call Redis: `services/store/` and the store classes, nobody else.

Every call under services/ whose receiver is named like a Redis connection (`redis`,
`self.redis`, `self._redis`, `rt.redis`, `redis.pipeline(...)`) is read with `ast`. Outside
`services/store/` only the modules in `STORE_MODULES` may make one: each owns its keys (defined in
services/store/keys.py) behind methods, and everybody else goes through them, usually taken
from the runtime's `Stores` (services/sync/deps.py). Closing a connection (`aclose`) is no
Redis command: who opens one closes it. A Redis connection renamed to something else (`r =
self.redis`) escapes this check; none is today.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# module -> the keys it owns (docs/architecture.md, "The composition root").
STORE_MODULES = {
    "services/advoware/concurrency.py": "the Advoware request slots",
    "services/advoware/token.py": "the Advoware bearer token",
    "services/backfill/state.py": "the backfill lease, run record and checkpoints",
    "services/intake/webhook.py": "the webhook de-duplication records",
    "services/ops/alerts.py": "the alert conditions",
    "services/ops/history.py": "the per-record history",
    "services/sync/backoff.py": "our own writes' change stamps (OwnWrites)",
    "services/sync/breaker.py": "the circuit breakers and the records they hold",
    "services/sync/deletions.py": "the deletion guard's counts, holds and scans",
    "services/sync/forget.py": "erases one record's keys, key by key from the registry",
    "services/sync/identity_index.py": "the identity index",
    "services/sync/intents.py": "the create intents",
    "services/sync/link_audit.py": "the daily link audit's summary",
    "services/sync/lock.py": "the record locks and their 'again' marks",
    "services/sync/notify.py": "the notices' outbox, claims and list",
    "services/sync/snapshot.py": "the snapshots and the betnr index",
    "services/sync/stores.py": "conflicts, pending Advoware changes, stats, recent events, unlinked marks",
}
LIFECYCLE = {"aclose"}


def _receiver(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _receiver(node.func)
    return ""


def redis_calls(root: Path = ROOT) -> dict[str, list[str]]:
    """module path -> `line: receiver.method` of every Redis call in it."""
    found: dict[str, list[str]] = {}
    for path in sorted((root / "services").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver = _receiver(node.func.value)
            if "redis" in receiver.lower() and node.func.attr not in LIFECYCLE:
                where = str(path.relative_to(root))
                found.setdefault(where, []).append(f"{node.lineno}: {receiver}.{node.func.attr}")
    return {
        module: sorted(calls, key=lambda call: int(call.split(":")[0])) for module, calls in found.items()
    }


def offenders(root: Path = ROOT) -> dict[str, list[str]]:
    return {
        module: calls
        for module, calls in redis_calls(root).items()
        if not module.startswith("services/store/") and module not in STORE_MODULES
    }


def test_only_the_stores_call_redis() -> None:
    assert offenders() == {}, "call the store that owns the key (or add one), not Redis"


def test_every_listed_store_module_still_calls_redis() -> None:
    """The list stays exact: a module that stopped owning keys leaves it."""
    calling = set(redis_calls())
    assert sorted(set(STORE_MODULES) - calling) == []


def test_the_check_sees_a_call_through_an_attribute(tmp_path: Path) -> None:
    module = tmp_path / "services" / "sync" / "part.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "async def f(self, rt):\n"
        "    await self._redis.get('k')\n"
        "    pipe = rt.redis.pipeline()\n"
        "    await rt.redis.aclose()\n"
    )
    assert offenders(tmp_path) == {"services/sync/part.py": ["2: _redis.get", "3: redis.pipeline"]}
