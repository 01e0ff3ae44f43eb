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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.sync.decide import DiffFn, mapper_diff

ADVO_BASELINE = "advo_baseline"
ESPO_BASELINE = "espo_baseline"


def unapplied(
    sent: Mapping[str, Any],
    answered: Mapping[str, Any],
    fields: Iterable[str],
    *,
    diff: DiffFn = mapper_diff,
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


def answered_fields(fields: Iterable[str], answer: Mapping[str, Any]) -> list[str]:
    """The fields an EspoCRM answer can be checked for: all of their attributes came back."""
    from services.beteiligte.fieldmap import FIELDS

    return [f for f in fields if f in FIELDS and all(a in answer for a in FIELDS[f].espo_attrs)]


@dataclass(frozen=True)
class Verification:
    """What one sync's writes did not apply, and the baselines its snapshot keeps."""

    advo_missing: dict[str, Any]
    espo_missing: dict[str, Any]
    extra: dict[str, Any]  # Snapshot.extra: {ADVO_BASELINE: ..., ESPO_BASELINE: ...}

    def message(self, sent: Mapping[str, Any]) -> str | None:
        parts = [message("Advoware", sent, self.advo_missing)] if self.advo_missing else []
        parts += [message("EspoCRM", sent, self.espo_missing)] if self.espo_missing else []
        return " ".join(parts)[:1000] or None


def verify_writes(
    sent: Mapping[str, Any],
    decided: Iterable[str],
    previous: Mapping[str, Any] | None,
    *,
    advo_fields: Iterable[str] = (),
    advo_answer: Mapping[str, Any] | None = None,
    espo_fields: Iterable[str] = (),
    espo_answer: Mapping[str, Any] | None = None,
    diff: DiffFn = mapper_diff,
) -> Verification:
    """Compare what was sent (`sent`, canonical) with the canonical answers of both writes."""
    decided = set(decided)
    advo_missing = unapplied(sent, advo_answer, advo_fields, diff=diff) if advo_answer is not None else {}
    espo_missing = unapplied(sent, espo_answer, espo_fields, diff=diff) if espo_answer is not None else {}
    prev = previous or {}
    return Verification(
        advo_missing,
        espo_missing,
        {
            ADVO_BASELINE: carry_baseline(prev.get(ADVO_BASELINE), decided, advo_missing),
            ESPO_BASELINE: carry_baseline(prev.get(ESPO_BASELINE), decided, espo_missing),
        },
    )
