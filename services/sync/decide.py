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

Without a snapshot (the first sync of a pair: linked by the backfill or the identity check, a
betnr typed in by a person, a Redis that was emptied) the first sync never destroys data:

| E vs A (one field)                         | action                                            |
|--------------------------------------------|---------------------------------------------------|
| equal                                      | nothing                                           |
| E empty, A not                             | Advoware's value -> EspoCRM (gap filled)          |
| A empty, E not                             | EspoCRM's value -> Advoware (gap filled)          |
| e-mail / phone lists, both non-empty       | union by normalised value -> both sides; the      |
|                                            | primary entry of the side the next rows pick      |
| both non-empty, only A changed since sync  | Advoware's value -> EspoCRM                       |
| both non-empty, only E changed since sync  | EspoCRM's value -> Advoware                       |
| both non-empty, both changed or unknown    | conflict: EspoCRM wins, notify with A value       |
| kind differs (person vs company)           | the whole record follows the rows above as one    |
|                                            | field (no gap filling across kinds)               |

Without a snapshot but with the record's fingerprint (services/sync/fingerprint.py: a hash per
field and side as the last sync left them, kept on the EspoCRM record), `fields_changed` says
per field which side changed it, and the snapshot table above applies (basis `fingerprint`);
a field that differs although neither side changed it is a known divergence and left alone.

"Changed since sync" is the caller's comparison of each side's change time with advowareLastSync
(None = unknown). Write verification: a field Advoware did not store as sent is compared on the
Advoware side with what it did store (`advo_baseline`, from the snapshot; `espo_baseline` the
same for EspoCRM), so a known divergence (already reported) is not taken for an edit there. Every field that differs is also described in `MergePlan.changes` (both values,
the value both sides get, the rule), which the dry runs print.

Per-field direction (the field map's, overridden by SYNC_FIELD_DIRECTIONS) is applied last to
every field that differs and replaces the rules above for that field; a one-way field has no
conflicts, its source is its master:

| direction                    | the values differ                                       |
|------------------------------|---------------------------------------------------------|
| both                         | the tables above                                        |
| to_advo (EspoCRM is source)  | EspoCRM's value -> Advoware; never written to EspoCRM   |
| to_espo (Advoware is source) | Advoware's value -> EspoCRM; never written to Advoware  |
| none                         | nothing; each side keeps its own value                  |
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from services.beteiligte.fieldmap import Direction

DiffFn = Callable[[Mapping[str, Any], Mapping[str, Any]], set[str]]


class Basis(StrEnum):
    SNAPSHOT = "snapshot"  # field-by-field against the last-synced snapshot
    EQUAL = "equal"  # no snapshot needed: both sides already agree
    FINGERPRINT = "fingerprint"  # no snapshot: field-by-field against the record's fingerprint
    FIRST_SYNC = "first_sync"  # no snapshot, content differs: the no-data-loss rules


@dataclass(frozen=True)
class FieldConflict:
    field: str
    espo_value: Any
    advo_value: Any  # the Advoware value that was overwritten


class Rule(StrEnum):
    """Why a differing field gets the value it gets (shown by the dry runs)."""

    ESPO_CHANGED = "espocrm_changed"  # snapshot: only EspoCRM changed
    ADVO_CHANGED = "advoware_changed"  # snapshot: only Advoware changed
    FILL_ESPO = "gap_filled_in_espocrm"  # no snapshot: EspoCRM empty
    FILL_ADVO = "gap_filled_in_advoware"  # no snapshot: Advoware empty
    UNION = "lists_merged"  # no snapshot: contact lists merged
    ESPO_NEWER = "espocrm_changed_since_sync"
    ADVO_NEWER = "advoware_changed_since_sync"
    CONFLICT = "conflict_espocrm_wins"
    ESPO_IS_SOURCE = "espocrm_is_source"  # one-way field EspoCRM -> Advoware
    ADVO_IS_SOURCE = "advoware_is_source"  # one-way field Advoware -> EspoCRM
    NOT_SYNCED = "not_synced"


@dataclass(frozen=True)
class FieldChange:
    field: str
    rule: Rule
    espo_value: Any
    advo_value: Any
    value: Any  # what both sides hold after the sync


@dataclass(frozen=True)
class MergePlan:
    basis: Basis
    to_advo: frozenset[str] = frozenset()
    to_espo: frozenset[str] = frozenset()
    conflicts: tuple[FieldConflict, ...] = ()
    merged: dict[str, Any] = field(default_factory=dict)
    changes: tuple[FieldChange, ...] = ()

    @property
    def is_noop(self) -> bool:
        return not self.to_advo and not self.to_espo


def mapper_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> set[str]:
    """The fields in which `a` and `b` differ after normalisation (`mapper.diff`): what "changed"
    means here, in write verification (verify.py) and for writes in doubt (in_doubt.py)."""
    from services.beteiligte.mapper import diff

    return diff(a, b)


LIST_KEYS: dict[str, tuple[str, Callable[[str], str]]] = {}  # filled lazily: field -> (item key, norm)


def _list_keys() -> dict[str, tuple[str, Callable[[str], str]]]:
    if not LIST_KEYS:
        from services.beteiligte.normalize import email_key, phone_key

        LIST_KEYS.update({"emails": ("address", email_key), "phones": ("number", phone_key)})
    return LIST_KEYS


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def union(first: list[Any], second: list[Any], item: str, norm: Callable[[str], str]) -> list[Any]:
    """`first` (its primary stays primary) plus the entries of `second` whose normalised value it
    lacks, those as non-primary. Nothing of either list is lost."""
    seen = {norm(str(e.get(item))) for e in first if isinstance(e, Mapping) and e.get(item)}
    out = [dict(e) for e in first]
    for e in second:
        if isinstance(e, Mapping) and e.get(item) and norm(str(e[item])) not in seen:
            seen.add(norm(str(e[item])))
            out.append({**e, "primary": False})
    return out


def decide(
    espo: Mapping[str, Any],
    advo: Mapping[str, Any],
    snapshot: Mapping[str, Any] | None,
    *,
    espo_changed_since_sync: bool | None = None,
    advo_changed_since_sync: bool | None = None,
    advo_baseline: Mapping[str, Any] | None = None,
    espo_baseline: Mapping[str, Any] | None = None,
    fields_changed: tuple[set[str], set[str]] | None = None,
    diff: DiffFn = mapper_diff,
    directions: Mapping[str, Direction] | None = None,
) -> MergePlan:
    """Plan the writes that bring EspoCRM (`espo`) and Advoware (`advo`) into agreement.

    `snapshot` is the content at the end of the last sync, or None. The two
    `*_changed_since_sync` flags are only read without a snapshot (None = unknown).
    `advo_baseline` / `espo_baseline` override snapshot fields for that side (write verification).
    `fields_changed`: (fields EspoCRM changed, fields Advoware changed) by the record's
    fingerprint, read only without a snapshot.
    `directions`: canonical field -> Direction for fields that are not two-way.
    """
    plan = functools.partial(_plan, directions=directions or {})
    differing = diff(espo, advo)
    if snapshot is not None and differing:
        advo_changed = diff(advo, {**snapshot, **(advo_baseline or {})})
        espo_changed = diff(espo, {**snapshot, **(espo_baseline or {})})
        baselines = set(advo_baseline or {}) | set(espo_baseline or {})
        known = {n for n in baselines if n not in advo_changed and n not in espo_changed}
        return plan(
            Basis.SNAPSHOT,
            espo,
            advo,
            _snapshot_rules(differing - known, espo_changed, advo_changed),
            {},
            diff,
        )
    if not differing:
        return MergePlan(basis=Basis.SNAPSHOT if snapshot is not None else Basis.EQUAL, merged=dict(espo))
    if snapshot is None and fields_changed is not None:
        espo_changed, advo_changed = fields_changed
        changed = differing & (espo_changed | advo_changed)  # the rest: a known divergence
        return plan(
            Basis.FINGERPRINT, espo, advo, _snapshot_rules(changed, espo_changed, advo_changed), {}, diff
        )
    if espo_changed_since_sync is True and advo_changed_since_sync is False:
        winner = Rule.ESPO_NEWER
    elif advo_changed_since_sync is True and espo_changed_since_sync is False:
        winner = Rule.ADVO_NEWER
    else:
        winner = Rule.CONFLICT
    if "kind" in differing:  # a person in one system, a company in the other: no field mixing
        return plan(Basis.FIRST_SYNC, espo, advo, dict.fromkeys(differing, winner), {}, diff)
    return plan(Basis.FIRST_SYNC, espo, advo, *_first_sync_rules(espo, advo, differing, winner), diff)


def _first_sync_rules(
    espo: Mapping[str, Any], advo: Mapping[str, Any], differing: set[str], winner: Rule
) -> tuple[dict[str, Rule], dict[str, Any]]:
    """The no-snapshot rules of each differing field (module docstring), and the merged lists."""
    rules: dict[str, Rule] = {}
    values: dict[str, Any] = {}
    for name in sorted(differing):
        e, a = espo.get(name), advo.get(name)
        if is_empty(e):
            rules[name] = Rule.FILL_ESPO
        elif is_empty(a):
            rules[name] = Rule.FILL_ADVO
        elif name in _list_keys() and isinstance(e, list) and isinstance(a, list):
            item, norm = _list_keys()[name]
            first, second = (a, e) if winner is Rule.ADVO_NEWER else (e, a)
            rules[name], values[name] = Rule.UNION, union(first, second, item, norm)
        else:
            rules[name] = winner
    return rules, values


def _snapshot_rules(differing: set[str], espo_changed: set[str], advo_changed: set[str]) -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    for name in sorted(differing):
        e, a = name in espo_changed, name in advo_changed
        if e and not a:
            rules[name] = Rule.ESPO_CHANGED
        elif a and not e:
            rules[name] = Rule.ADVO_CHANGED
        else:
            # Both changed to different values, or neither "changed" yet they differ
            # (a snapshot that matches neither side): EspoCRM wins, a person is told.
            rules[name] = Rule.CONFLICT
    return rules


_TAKES_ADVO = frozenset({Rule.ADVO_CHANGED, Rule.FILL_ESPO, Rule.ADVO_NEWER})
_DIRECTED = {
    Direction.TO_ADVO: Rule.ESPO_IS_SOURCE,
    Direction.TO_ESPO: Rule.ADVO_IS_SOURCE,
    Direction.NONE: Rule.NOT_SYNCED,
}


def _directed(
    rules: Mapping[str, Rule], values: Mapping[str, Any], directions: Mapping[str, Direction]
) -> tuple[dict[str, Rule], dict[str, Any]]:
    """The one-way and unsynced fields' rules replace the two-way ones (module docstring)."""
    out_rules, out_values = dict(rules), dict(values)
    for name in rules:
        rule = _DIRECTED.get(directions.get(name, Direction.BOTH))
        if rule is not None:
            out_rules[name] = rule
            out_values.pop(name, None)
    return out_rules, out_values


def _plan(
    basis: Basis,
    espo: Mapping[str, Any],
    advo: Mapping[str, Any],
    rules: Mapping[str, Rule],
    values: Mapping[str, Any],
    diff: DiffFn,
    *,
    directions: Mapping[str, Direction],
) -> MergePlan:
    """Turn each differing field's rule into the merged content and the writes to each side."""
    rules, values = _directed(rules, values, directions)
    merged = dict(espo)
    for name, rule in rules.items():
        if name in values:
            merged[name] = values[name]
        elif rule in _TAKES_ADVO:
            merged[name] = advo.get(name)
    if basis is Basis.FIRST_SYNC and "kind" in rules and rules["kind"] in _TAKES_ADVO:
        merged = {**advo}  # the kind follows Advoware: so does every field
    for name, rule in rules.items():
        if rule is Rule.ESPO_IS_SOURCE:
            merged[name] = espo.get(name)
        elif rule in (Rule.ADVO_IS_SOURCE, Rule.NOT_SYNCED):
            merged[name] = advo.get(name)  # not synced: Advoware keeps its value, EspoCRM is not written
    unsynced = {name for name, rule in rules.items() if rule is Rule.NOT_SYNCED}
    to_advo = diff(merged, advo) & set(rules)
    to_espo = (diff(merged, espo) & set(rules)) - unsynced
    conflicts = tuple(
        FieldConflict(name, espo.get(name), advo.get(name))
        for name, rule in sorted(rules.items())
        if rule is Rule.CONFLICT
    )
    changes = tuple(
        FieldChange(name, rule, espo.get(name), advo.get(name), merged.get(name))
        for name, rule in sorted(rules.items())
    )
    return MergePlan(
        basis=basis,
        to_advo=frozenset(to_advo),
        to_espo=frozenset(to_espo),
        conflicts=conflicts,
        merged=merged,
        changes=changes,
    )


def change_rows(plan: MergePlan) -> list[dict[str, Any]]:
    """Each field a sync writes, for the dry runs: both values and the value both sides get (as
    `mapper.describe` shows them), where it goes, and the rule that decided it."""
    from services.beteiligte.mapper import describe

    def show(name: str, value: Any) -> str:
        return describe(name, value).split(": ", 1)[1]

    rows = []
    for change in plan.changes:
        targets = [
            d
            for d, names in (("to_advoware", plan.to_advo), ("to_espocrm", plan.to_espo))
            if change.field in names
        ]
        if not targets:
            continue
        rows.append(
            {
                "field": change.field,
                "espocrm": show(change.field, change.espo_value),
                "advoware": show(change.field, change.advo_value),
                "result": show(change.field, change.value),
                "direction": "both" if len(targets) == 2 else targets[0],
                "rule": change.rule.value,
                "conflict": change.rule is Rule.CONFLICT,
            }
        )
    return rows
