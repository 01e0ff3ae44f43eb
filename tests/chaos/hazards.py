"""The chaos scenario's moments *between* the steps (issue: never a second party, never a
silently lost edit), and the checks that go with them.

- **Lost answers**: both simulators carry a request out and close the connection without an
  answer (`lost_answer` faults among the others): a POST that created a party, a PUT that
  wrote, an EspoCRM write that was stored.
- **A person's save during a sync**: EspoCRM's optimistic concurrency control is on (as the
  README tells a firm to set it up), and while a burst's syncs are in flight, with Advoware
  slowed down, a person saves an EspoCRM-owned field of a record being synced. Its value must
  win on both sides (the sync's write carries the version it decided on; EspoCRM answers 409).
- **Two CRM records of one party** created at once: one Advoware party, the other record held.
- **Redis emptied while work is in flight** (`CHAOS_REDIS_FLUSHES`, the long run): FLUSHALL right
  after a burst, not at a quiet point.
- **False conflict notices**: every conflict notice must name a same-field pair the scenario
  made; a one-sided edit reported as a conflict (e.g. after Redis came back empty) is counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from services.beteiligte import mapper

# `services/sync/notify.py` conflict_text: one line per field.
CONFLICT_HEAD = "Konflikt beim Abgleich"
CONFLICT_LINE = re.compile(r"Advoware-Wert „(?P<advo>.*?)“ überschrieben")

ADVO_LOST_ANSWERS: list[dict[str, Any]] = [
    {"kind": "lost_answer", "rate": 0.15, "match": {"method": "POST", "path": "Beteiligte$"}},
    {"kind": "lost_answer", "rate": 0.05, "match": {"method": "PUT"}},
]
ESPO_LOST_ANSWERS: list[dict[str, Any]] = [
    {"kind": "lost_answer", "rate": 0.03, "match": {"method": "PUT"}},
]
# Advoware reads slowed for the syncs a person's save lands in.
SLOW_READS: dict[str, Any] = {"kind": "latency", "latency_ms": 1500, "next_n": 6, "match": {"method": "GET"}}


def conflict_notices(notes: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(record id, overwritten Advoware value as described) of every conflict notice, each
    distinct notice once (the log and EspoCRM's notes carry the same notice)."""
    seen: set[tuple[str, str]] = set()
    out: list[tuple[str, str]] = []
    for note in notes:
        message = note.get("message") or ""
        if CONFLICT_HEAD not in message or not note.get("id"):
            continue
        for match in CONFLICT_LINE.finditer(message):
            item = (str(note["id"]), match.group("advo"))
            if item not in seen:
                seen.add(item)
                out.append(item)
    return out


def false_conflicts(
    planned: dict[str, list[dict[str, Any]]], notes: Iterable[dict[str, Any]]
) -> list[tuple[str, str]]:
    """Conflict notices that name no same-field pair the scenario made on that record.
    `planned`: record id -> its conflict pairs ({"field", "advo", …})."""
    out = []
    for rid, advo_text in conflict_notices(notes):
        named = {mapper.describe_value(p["field"], p["advo"]) for p in planned.get(rid, [])}
        if advo_text not in named:
            out.append((rid, advo_text))
    return out


def held_pairs(espo: dict[str, dict[str, Any]], pairs: dict[int, list[str]]) -> list[str]:
    """Problems of the duplicate pairs: each must end as one linked, clean record and one held
    (`conflict`, no betnr). Which of the two wins depends on timing and does not matter."""
    problems = []
    for number, rids in pairs.items():
        rows = [espo[r] for r in rids]
        linked = [r for r in rows if r.get("betnr") and r.get("syncStatus") == "clean"]
        held = [r for r in rows if not r.get("betnr") and r.get("syncStatus") == "conflict"]
        if len(linked) != 1 or len(held) != 1:
            shown = [(r["id"], r.get("syncStatus"), r.get("betnr")) for r in rows]
            problems.append(f"pair {number}: {shown}")
    return problems


def unexpected_conflicts(espo: dict[str, dict[str, Any]], pairs: dict[int, list[str]]) -> list[str]:
    """The records in `conflict` beyond one held record per duplicate pair: id, syncStatus and
    syncErrorMessage (it names the rule and the candidates), so a failure explains itself."""
    expected: set[str] = set()
    for rids in pairs.values():
        held = [r for r in rids if espo.get(r, {}).get("syncStatus") == "conflict"]
        expected.update(held[:1])
    return [
        f"{rid} {row.get('syncStatus')}: {row.get('syncErrorMessage')}"
        for rid, row in sorted(espo.items())
        if row.get("syncStatus") == "conflict" and rid not in expected
    ]
