"""Writes in doubt (pure): values a sync sent whose answer it never saw.

A write can be carried out although its answer is lost (a timeout, a dropped connection): the
Advoware PUT, or the EspoCRM write that ends a sync. The run then fails before its snapshot, so
the next run would compare the side that stored our write with the *old* snapshot and take the
service's own value for a person's edit there. Alone that only repeats a write; together with a
person's next edit of the same field on the other side it is a false conflict - the notice names
the person's own earlier value as "Advoware's", or EspoCRM's stale value overwrites staff's new
edit in Advoware.

So right before each write of values a run records with the snapshot what it is sending
(`record`: the Advoware part before the PUT, the EspoCRM part before the final write; a refused
PUT takes its part back); the snapshot that ends a successful run has none. The next run settles
the snapshot against what the sides hold now (`settle`), before it decides:

| the side holds the value sent        | the field in the settled snapshot                     |
|--------------------------------------|-------------------------------------------------------|
| yes                                  | the value sent: the write was ours and was applied;   |
|                                      | a write-verification baseline of the field is dropped |
| no                                   | as it was (not applied, or a person changed it since: |
|                                      | an edit as usual); the record of it is dropped        |

With a snapshot every value a run sends to one side is the other side's value at its read
(services/sync/decide.py: only the no-snapshot merge of contact lists writes a third value, and
no field goes to both sides), so the value sent is what both sides agreed on once the write was
applied: a legitimate last-synced state. A side that holds it made no edit, and the other side's
difference from it is that side's edit. A settled snapshot is what the run's own records and its
final snapshot build on, so what an earlier record settled is kept and what it did not is gone.
Nothing is recorded for a first sync (no snapshot): its rules run again as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from services.sync.decide import DiffFn, mapper_diff

if TYPE_CHECKING:
    from services.sync.snapshot import Snapshot

ADVO = "advo"
ESPO = "espo"


def record(content: Mapping[str, Any], to_advo: Iterable[str], to_espo: Iterable[str]) -> dict[str, Any]:
    """What a run is sending: `content`'s `to_advo` fields to Advoware, its `to_espo` fields to
    EspoCRM (an empty part is left out)."""
    parts = {ADVO: {f: content.get(f) for f in to_advo}, ESPO: {f: content.get(f) for f in to_espo}}
    return {side: values for side, values in parts.items() if values}


def settled(
    in_doubt: Mapping[str, Any] | None,
    espo: Mapping[str, Any],
    advo: Mapping[str, Any],
    *,
    diff: DiffFn = mapper_diff,
) -> dict[str, Any]:
    """Field -> the value sent, for each write in doubt that the side it went to holds now."""
    out: dict[str, Any] = {}
    for side, current in ((ADVO, advo), (ESPO, espo)):
        for name, value in ((in_doubt or {}).get(side) or {}).items():
            if name not in diff(current, {**current, name: value}):
                out[name] = value
    return out


def settle(snap: Snapshot, espo: Mapping[str, Any], advo: Mapping[str, Any]) -> Snapshot:
    """The snapshot with the writes in doubt that were applied as its content (the table above).
    Its `in_doubt` stays as stored, so that the run writes a snapshot without it."""
    from services.beteiligte.mapper import content_hash

    ours = settled(snap.in_doubt, espo, advo)
    if not ours:
        return snap
    content = {**snap.content, **ours}
    extra = {
        kind: {f: v for f, v in (base or {}).items() if f not in ours} for kind, base in snap.extra.items()
    }
    return replace(snap, content=content, content_hash=content_hash(content), extra=extra)
