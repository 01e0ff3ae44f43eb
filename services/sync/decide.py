"""Deciding what to write: a pure three-way merge against the last-synced snapshot.

No I/O, no clock: everything the decision depends on is an argument, so every rule has
a unit test. Content is the mapper's canonical `SyncedContent`; "changed" always means
"differs after normalisation" (`mapper.diff`), so formatting-only differences never
cause a write.

| E vs S  | A vs S             | action                                      |
|---------|--------------------|---------------------------------------------|
| same    | same               | nothing                                     |
| changed | same               | EspoCRM's value -> Advoware                 |
| same    | changed            | Advoware's value -> EspoCRM                 |
| changed | changed, equal E   | nothing (they already agree)                |
| changed | changed, differs   | conflict: EspoCRM wins, notify with A value |

Without a snapshot, equal content needs nothing; otherwise the side that changed since
the last sync (per the caller's timestamp comparison) wins for every differing field,
and both (or neither, i.e. unknown) is a conflict that EspoCRM wins.

Per-field direction (the field map's, overridden by SYNC_FIELD_DIRECTIONS) is applied last,
to the fields that differ, and replaces the rules above for that field:

| direction                   | the values differ                                      |
|-----------------------------|--------------------------------------------------------|
| both                        | the table above                                        |
| to_advo (EspoCRM is source) | EspoCRM's value -> Advoware; never written to EspoCRM  |
| to_espo (Advoware is source)| Advoware's value -> EspoCRM; never written to Advoware |
| none                        | nothing; each side keeps its own value                 |

A one-way field has no conflicts: its source is its master.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from services.beteiligte.fieldmap import Direction

DiffFn = Callable[[Mapping[str, Any], Mapping[str, Any]], set[str]]


class Basis(StrEnum):
    SNAPSHOT = "snapshot"  # field-by-field against the last-synced snapshot
    TIMESTAMPS = "timestamps"  # no snapshot: change times vs advowareLastSync decide
    EQUAL = "equal"  # no snapshot needed: both sides already agree


@dataclass(frozen=True)
class FieldConflict:
    field: str
    espo_value: Any
    advo_value: Any  # the Advoware value that was overwritten


@dataclass(frozen=True)
class MergePlan:
    basis: Basis
    to_advo: frozenset[str] = frozenset()
    to_espo: frozenset[str] = frozenset()
    conflicts: tuple[FieldConflict, ...] = ()
    merged: dict[str, Any] = field(default_factory=dict)

    @property
    def writes_advo(self) -> bool:
        return bool(self.to_advo)

    @property
    def writes_espo(self) -> bool:
        return bool(self.to_espo)

    @property
    def is_noop(self) -> bool:
        return not self.to_advo and not self.to_espo


def _default_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> set[str]:
    from services.beteiligte.mapper import diff

    return diff(a, b)


def decide(
    espo: Mapping[str, Any],
    advo: Mapping[str, Any],
    snapshot: Mapping[str, Any] | None,
    *,
    espo_changed_since_sync: bool | None = None,
    advo_changed_since_sync: bool | None = None,
    diff: DiffFn = _default_diff,
    directions: Mapping[str, Direction] | None = None,
) -> MergePlan:
    """Plan the writes that bring EspoCRM (`espo`) and Advoware (`advo`) into agreement.

    `snapshot` is the content at the end of the last sync, or None. The two
    `*_changed_since_sync` flags are only read without a snapshot (None = unknown).
    `directions`: canonical field -> Direction for the fields that are not two-way.
    """
    differing = diff(espo, advo)
    merged = dict(espo)
    if not differing:
        return MergePlan(basis=Basis.SNAPSHOT if snapshot is not None else Basis.EQUAL, merged=merged)

    to_advo: set[str] = set()
    to_espo: set[str] = set()
    conflicts: list[FieldConflict] = []

    if snapshot is not None:
        espo_changed = diff(espo, snapshot)
        advo_changed = diff(advo, snapshot)
        basis = Basis.SNAPSHOT
        for name in sorted(differing):
            e, a = name in espo_changed, name in advo_changed
            if e and not a:
                to_advo.add(name)
            elif a and not e:
                to_espo.add(name)
            else:
                # Both changed to different values, or neither "changed" yet they differ
                # (a snapshot that matches neither side): EspoCRM wins, a person is told.
                to_advo.add(name)
                conflicts.append(FieldConflict(name, espo.get(name), advo.get(name)))
    else:
        basis = Basis.TIMESTAMPS
        only_advo = advo_changed_since_sync is True and espo_changed_since_sync is False
        only_espo = espo_changed_since_sync is True and advo_changed_since_sync is False
        for name in sorted(differing):
            if only_advo:
                to_espo.add(name)
            elif only_espo:
                to_advo.add(name)
            else:
                to_advo.add(name)
                conflicts.append(FieldConflict(name, espo.get(name), advo.get(name)))

    if directions:
        conflicts = _apply_directions(directions, differing, to_advo, to_espo, conflicts)
    for name in to_espo:
        merged[name] = advo.get(name)
    for name in differing - to_advo - to_espo:
        merged[name] = advo.get(name)  # not synced: Advoware keeps its value, EspoCRM is not written
    return MergePlan(
        basis=basis,
        to_advo=frozenset(to_advo),
        to_espo=frozenset(to_espo),
        conflicts=tuple(conflicts),
        merged=merged,
    )


def _apply_directions(
    directions: Mapping[str, Direction],
    differing: set[str],
    to_advo: set[str],
    to_espo: set[str],
    conflicts: list[FieldConflict],
) -> list[FieldConflict]:
    """Re-decide the one-way and unsynced fields (table in the module docstring)."""
    one_way = {name for name in differing if directions.get(name, Direction.BOTH) is not Direction.BOTH}
    for name in one_way:
        to_advo.discard(name)
        to_espo.discard(name)
        if directions[name] is Direction.TO_ADVO:
            to_advo.add(name)
        elif directions[name] is Direction.TO_ESPO:
            to_espo.add(name)
    return [c for c in conflicts if c.field not in one_way]
