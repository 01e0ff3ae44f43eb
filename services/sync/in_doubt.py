"""Writes in doubt (pure): values a sync sent whose answer it never saw.

A write can be carried out although its answer is lost (a timeout, a dropped connection): the
Advoware PUT, or the EspoCRM write that ends a sync. The run then fails before its snapshot, so
the next run would compare the side that stored our write with the *old* snapshot and take the
service's own value for a person's edit there. Alone that only repeats a write; together with a
person's next edit of the same field on the other side it is a false conflict - the notice names
the person's own earlier value as "Advoware's", or EspoCRM's stale value overwrites staff's new
edit in Advoware.

So before a run writes, it records with the snapshot what it is about to send to each side
(`record`); the snapshot that ends a successful run replaces it. The next run settles each field
against what the sides hold now (`settled`):

| the side holds the value sent        | the field's base for the next decision (both sides)   |
|--------------------------------------|-------------------------------------------------------|
| yes                                  | the value sent: the write was ours and was applied    |
| no                                   | the snapshot's (not applied, or a person changed it   |
|                                      | since: an edit as usual)                              |

With a snapshot every value a run sends to one side is the other side's value at its read
(services/sync/decide.py: only the no-snapshot merge of contact lists writes a third value), so
the value sent is what both sides agree on once the write is applied; a side that holds it
made no edit, and the other side's difference from it is that side's edit. Nothing is recorded
for a first sync (no snapshot): its rules run again as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

DiffFn = Callable[[Mapping[str, Any], Mapping[str, Any]], set[str]]
ADVO = "advo"
ESPO = "espo"


def _default_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> set[str]:
    from services.beteiligte.mapper import diff

    return diff(a, b)


def record(
    previous: Mapping[str, Any] | None,
    content: Mapping[str, Any],
    to_advo: Iterable[str],
    to_espo: Iterable[str],
) -> dict[str, Any]:
    """The writes in doubt after this run sends `content`'s `to_advo` fields to Advoware and its
    `to_espo` fields to EspoCRM, on top of an earlier run's that no snapshot has settled yet."""
    prev = previous or {}
    return {
        ADVO: {**(prev.get(ADVO) or {}), **{f: content.get(f) for f in to_advo}},
        ESPO: {**(prev.get(ESPO) or {}), **{f: content.get(f) for f in to_espo}},
    }


def settled(
    in_doubt: Mapping[str, Any] | None,
    espo: Mapping[str, Any],
    advo: Mapping[str, Any],
    *,
    diff: DiffFn = _default_diff,
) -> dict[str, Any]:
    """Field -> the value sent, for each write in doubt that the side it went to holds now."""
    out: dict[str, Any] = {}
    for side, current in ((ADVO, advo), (ESPO, espo)):
        for name, value in ((in_doubt or {}).get(side) or {}).items():
            if name not in diff(current, {**current, name: value}):
                out[name] = value
    return out
