"""The sync's fingerprint on the EspoCRM record: which side changed a field, when Redis lost the
snapshot.

The snapshot (services/sync/snapshot.py) lives in Redis. Without it the first sync of a pair can
only compare change times per *record* (planning.py): a person editing the title in EspoCRM while
staff change the birth date in Advoware looks like "both sides changed" and every differing field
became a conflict notice (the long chaos run's false notices after a FLUSHALL). So each sync's
final EspoCRM write also stores, in `syncFingerprint`, a short hash of every synced field as both
sides held it when the sync ended - one hash per field and side, no value. With it the no-snapshot
sync decides field by field, like the snapshot's three-way merge:

| E vs print | A vs print | the fields differ: action                              |
|------------|------------|--------------------------------------------------------|
| changed    | same       | EspoCRM's value -> Advoware                            |
| same       | changed    | Advoware's value -> EspoCRM                            |
| changed    | changed    | conflict: EspoCRM wins, notify (decide.py)             |
| same       | same       | nothing: a known divergence, as the last sync left it  |

It is written in the same PUT as the values it describes (and its version check), so the two
cannot disagree except when that PUT's answer was lost; a fingerprint of another betnr (a person
relinked the record) or one the service cannot read is ignored (record-level rules, as before).
An instance without the field drops it silently (EspoCRM ignores undefined attributes): the sync
then works as before; `setup-espocrm` adds it.

Stored as compact JSON: {"v": 1, "b": betnr, "f": {field: print}, "a": {field: print}} where
"a" holds Advoware's print only for fields Advoware did not store as sent (verify.py's baseline).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.espocrm.fields import SYNC_FINGERPRINT

#: The EspoCRM field (services/espocrm/schema.py).
FIELD = SYNC_FINGERPRINT
VERSION = 1


@dataclass(frozen=True)
class Fingerprint:
    betnr: int
    espo: dict[str, str]  # field -> print of what EspoCRM held after the sync
    advo: dict[str, str]  # field -> print of what Advoware held after the sync

    def encode(self) -> str:
        differs = {name: p for name, p in self.advo.items() if self.espo.get(name) != p}
        body: dict[str, Any] = {"v": VERSION, "b": self.betnr, "f": self.espo}
        if differs:
            body["a"] = differs
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    def changed(self, espo: Mapping[str, Any], advo: Mapping[str, Any]) -> tuple[set[str], set[str]]:
        """(fields EspoCRM changed, fields Advoware changed) since the sync that wrote this, for
        canonical contents `espo` and `advo`. A field the fingerprint lacks counts as changed."""
        from services.beteiligte.mapper import field_prints

        now_espo, now_advo = field_prints(espo), field_prints(advo)
        return (
            {n for n, p in now_espo.items() if self.espo.get(n) != p},
            {n for n, p in now_advo.items() if self.advo.get(n) != p},
        )


def of(betnr: int, agreed: Mapping[str, Any], advo_baseline: Mapping[str, Any] | None = None) -> Fingerprint:
    """The fingerprint of a sync that leaves both sides holding `agreed` (canonical content),
    except the fields of `advo_baseline`, which Advoware stored differently."""
    from services.beteiligte.mapper import field_prints

    espo = field_prints(agreed)
    advo = field_prints({**agreed, **advo_baseline}) if advo_baseline else dict(espo)
    return Fingerprint(betnr, espo, advo)


def read(record: Mapping[str, Any], betnr: int) -> Fingerprint | None:
    """The fingerprint an EspoCRM record carries for the pair with `betnr`; None when it has none,
    one of another pair, or one this version cannot read."""
    raw = record.get(FIELD)
    if not raw or not isinstance(raw, str):
        return None
    try:
        body = json.loads(raw)
        if body.get("v") != VERSION or int(body["b"]) != betnr or not isinstance(body["f"], dict):
            return None
        espo = {str(k): str(v) for k, v in body["f"].items()}
        return Fingerprint(
            betnr, espo, {**espo, **{str(k): str(v) for k, v in (body.get("a") or {}).items()}}
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
