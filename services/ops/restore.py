"""Restore the Advoware value a conflict overwrote: a person's decision, carried out as a sync.

A same-field conflict is resolved by the seed's rule (EspoCRM wins) and its history entry keeps
both values. When the person who reads the notice decides the Advoware value was right, `restore`
writes it back: to EspoCRM (versioned, like every write of the sync), then a normal sync of the
record carries it to Advoware as an EspoCRM edit, and the history records the decision.

It never writes blindly. `decide_restore` (pure) allows it only while both sides still hold the
value that won the conflict:

| the record's history                | EspoCRM now         | Advoware now        | decision            |
|-------------------------------------|---------------------|---------------------|---------------------|
| no conflict on the field            | -                   | -                   | refused, 404        |
| newest conflict on the field        | ≠ the winning value | -                   | refused, 409: "changed in EspoCRM since" |
| newest conflict on the field        | = the winning value | ≠ the winning value | refused, 409: "changed in Advoware since" |
| newest conflict on the field        | = the winning value | = the winning value | restore the overwritten value |

Values are compared in the sync's comparison form (services/beteiligte/mapper.py), so spelling
differences the sync ignores do not refuse a restore.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.errors import OperationError

if TYPE_CHECKING:
    from services.runtime import Runtime

log = logging.getLogger(__name__)

TRIGGER = "restore"


@dataclass(frozen=True)
class RestorePlan:
    field: str
    value: Any  # the Advoware value the conflict overwrote (canonical form)
    replaces: Any  # the value that won the conflict (canonical form)
    conflict_at: str


def _same(field: str, a: Any, b: Any) -> bool:
    from services.beteiligte import mapper

    return mapper.comparison_form({field: a}).get(field) == mapper.comparison_form({field: b}).get(field)


def newest_conflict(entries: Sequence[Mapping[str, Any]], field: str) -> tuple[str, Mapping[str, Any]] | None:
    """(when, the conflict) of the newest history entry with a conflict on `field`."""
    for entry in entries:  # newest first
        for conflict in entry.get("conflicts") or ():
            if conflict.get("field") == field:
                return str(entry.get("at")), conflict
    return None


def decide_restore(
    entries: Sequence[Mapping[str, Any]],
    field: str,
    espo_now: Mapping[str, Any],
    advo_now: Mapping[str, Any],
) -> RestorePlan:
    """The rules table above. `espo_now` / `advo_now`: both sides' canonical content now."""
    found = newest_conflict(entries, field)
    if found is None:
        raise OperationError(f"no conflict on {field} in this record's history", 404)
    at, conflict = found
    winner = conflict.get("espocrm")
    if not _same(field, espo_now.get(field), winner):
        raise OperationError(f"{field} changed in EspoCRM since the conflict of {at}; nothing restored", 409)
    if not _same(field, advo_now.get(field), winner):
        raise OperationError(
            f"{field} changed in Advoware since the conflict of {at} (or is not synced yet); nothing restored",
            409,
        )
    return RestorePlan(
        field=field, value=conflict.get("advoware_overwritten"), replaces=winner, conflict_at=at
    )


async def restore(rt: Runtime, record_id: str, field: str) -> dict[str, Any]:
    """Write the overwritten Advoware value of `field` back to both sides (see the module doc).
    Raises OperationError (404 unknown record or no conflict, 409 refused or busy)."""
    from services.beteiligte import mapper
    from services.beteiligte.fieldmap import FIELDS
    from services.errors import NotFoundError, VersionConflictError
    from services.ops.actions import outcome_dict
    from services.ops.history import HistoryEntry, history_for
    from services.sync.model import ENTITY, Trigger

    if field not in FIELDS:
        raise OperationError(f"unknown field {field!r}; fields: {', '.join(sorted(FIELDS))}")
    engine = rt.engine
    async with engine.locks.holding(record_id):
        try:
            espo = await rt.espo.get(ENTITY, record_id)
        except NotFoundError:
            raise OperationError(f"no EspoCRM record {record_id}", 404) from None
        betnr = espo.get("betnr")
        if not betnr:
            raise OperationError(f"record {record_id} is not linked to an Advoware party", 409)
        advo = await rt.advo.get_beteiligter(int(betnr))
        history = history_for(rt.redis, rt.settings)
        plan = decide_restore(
            await history.entries(record_id), field, mapper.from_espo(espo), mapper.from_advo(advo)
        )
        content = {**mapper.from_espo(espo), field: plan.value}
        patch = mapper.to_espo_patch(content, [field], current=espo, record_id=record_id)
        try:
            await rt.espo.update(ENTITY, record_id, patch, version_number=espo.get("versionNumber"))
        except VersionConflictError:
            raise OperationError(
                f"record {record_id} was saved in EspoCRM just now; try again", 409
            ) from None
        await history.add(
            record_id,
            HistoryEntry(
                at=rt.clock().isoformat(),
                trigger=TRIGGER,
                result="restored",
                direction="to_espocrm",
                fields_to_espocrm=(field,),
                changes=({"field": field, "system": "espocrm", "old": plan.replaces, "new": plan.value},),
                winner="advoware",
                betnr=int(betnr),
                reason=f"a person restored the Advoware value the conflict of {plan.conflict_at} overwrote",
                extra={"decided_by": "person"},
            ),
        )
    log.info("record %s: %s restored to the Advoware value; syncing", record_id, field)
    outcome = await engine.sync_record(record_id, Trigger.MANUAL)
    return {"restored": field, "conflict_at": plan.conflict_at, "sync": outcome_dict(outcome)}


async def restore_request(rt: Runtime, body: Any) -> dict[str, Any]:
    """`POST /vmh/beteiligte/sync/restore` with `{"id": "<EspoCRM id>", "field": "<field>"}`."""
    if not isinstance(body, Mapping) or not all(
        isinstance(body.get(k), str) and body[k].strip() for k in ("id", "field")
    ):
        raise OperationError('expected {"id": "<EspoCRM id>", "field": "<canonical field, e.g. title>"}')
    return await restore(rt, body["id"].strip(), body["field"].strip())
