"""Write verification (pure): did the other system store what we sent?

A write can answer 200 and still not apply a field (read-only there, truncated, a sub-resource).
The snapshot is therefore taken from the answer, and every field whose answered value differs
from what was sent is

* reported on the record (a note and `syncErrorMessage`, `message()`), and
* kept as a *baseline* in the snapshot (`Snapshot.extra`, `carry_baseline()`): the next sync
  compares that side with what it stored, not with what we sent (`decide(advo_baseline=...)`),
  so the known divergence is not mistaken for a person's edit there and copied back over the
  edit that was sent. A later real edit on either side is synced as usual.

| sent vs answered (a field we wrote) | result                                         |
|-------------------------------------|------------------------------------------------|
| equal after normalisation           | nothing                                        |
| differs                             | reported; baseline = the answered value        |
| field not written by this sync      | not checked; an earlier baseline is kept       |
|                                     | unless this sync decided that field anew       |
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

DiffFn = Callable[[Mapping[str, Any], Mapping[str, Any]], set[str]]
ADVO_BASELINE = "advo_baseline"
ESPO_BASELINE = "espo_baseline"


def _default_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> set[str]:
    from services.beteiligte.mapper import diff

    return diff(a, b)


def unapplied(
    sent: Mapping[str, Any],
    answered: Mapping[str, Any],
    fields: Iterable[str],
    *,
    diff: DiffFn = _default_diff,
) -> dict[str, Any]:
    """Field -> the value the system answered, for each written field it did not store as sent."""
    differing = diff(sent, answered)
    return {name: answered.get(name) for name in sorted(set(fields)) if name in differing}


def carry_baseline(
    previous: Mapping[str, Any] | None, decided: Iterable[str], new: Mapping[str, Any]
) -> dict[str, Any]:
    """The baseline to store: earlier divergences of fields this sync left alone, plus the new."""
    decided = set(decided)
    kept = {name: value for name, value in (previous or {}).items() if name not in decided}
    return {**kept, **new}


def message(system: str, sent: Mapping[str, Any], stored: Mapping[str, Any]) -> str:
    """The German text for `syncErrorMessage` and the note, naming each field with both values."""
    from services.beteiligte.mapper import describe

    parts = [
        f"{describe(name, sent.get(name))} (gesendet) / {describe(name, value).split(': ', 1)[1]} (gespeichert)"
        for name, value in stored.items()
    ]
    return (
        f"{system} hat nicht alle Werte übernommen: " + "; ".join(parts) + f". Bitte in {system} prüfen; "
        "der Abgleich überschreibt deshalb nichts auf der anderen Seite."
    )
