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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

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
) -> MergePlan:
    """Plan the writes that bring EspoCRM (`espo`) and Advoware (`advo`) into agreement.

    `snapshot` is the content at the end of the last sync, or None. The two
    `*_changed_since_sync` flags are only read without a snapshot (None = unknown).
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

    for name in to_espo:
        merged[name] = advo.get(name)
    return MergePlan(
        basis=basis,
        to_advo=frozenset(to_advo),
        to_espo=frozenset(to_espo),
        conflicts=tuple(conflicts),
        merged=merged,
    )
