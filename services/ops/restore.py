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
| newest conflict on the field        | = the overwritten value | = the overwritten value | refused, 409: "already restored on both sides" |
| newest conflict on the field        | = the overwritten value | = the winning value | written to EspoCRM already (a repeat after a lost answer): no write, sync |
| newest conflict on the field        | ≠ the winning value | -                   | refused, 409: "changed in EspoCRM since" |
| newest conflict on the field        | = the winning value | ≠ the winning value | refused, 409: "changed in Advoware since" |
| newest conflict on the field        | = the winning value | = the winning value | restore the overwritten value |

Values are compared in the sync's comparison form (services/beteiligte/mapper.py), so spelling
differences the sync ignores do not refuse a restore.

At its edges (tests/unit/test_ops_edges.py):

| moment                                           | outcome                                                   |
|--------------------------------------------------|-----------------------------------------------------------|
| the EspoCRM write's answer is lost               | 503 "may have been carried out"; run again: row 2 above   |
| a person saves the record between read and write | EspoCRM 409 (versioned write) -> 409 "try again"; the edit stays |
| Redis emptied afterwards                         | the pair stays restored (both sides hold the value)       |
| Redis emptied before (history gone)              | refused 404: no conflict on the field                     |
| EspoCRM or Advoware down now                     | 503 before anything is written                            |
| Advoware down after the EspoCRM write            | restored in EspoCRM; the sync waits / fails and retries it |
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
    written: bool = False  # EspoCRM already holds `value` (a repeat after a lost answer)


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
    winner, overwritten = conflict.get("espocrm"), conflict.get("advoware_overwritten")
    if _same(field, espo_now.get(field), overwritten):
        if _same(field, advo_now.get(field), overwritten):
            raise OperationError(f"{field} is restored on both sides already (conflict of {at})", 409)
        if _same(field, advo_now.get(field), winner):
            return RestorePlan(field=field, value=overwritten, replaces=winner, conflict_at=at, written=True)
    if not _same(field, espo_now.get(field), winner):
        raise OperationError(f"{field} changed in EspoCRM since the conflict of {at}; nothing restored", 409)
    if not _same(field, advo_now.get(field), winner):
        raise OperationError(
            f"{field} changed in Advoware since the conflict of {at} (or is not synced yet); nothing restored",
            409,
        )
    return RestorePlan(field=field, value=overwritten, replaces=winner, conflict_at=at)


async def restore(rt: Runtime, record_id: str, field: str) -> dict[str, Any]:
    """Write the overwritten Advoware value of `field` back to both sides (see the module doc).
    Raises OperationError (404 unknown record or no conflict, 409 refused or busy, 503 a
    system down or silent: services/ops/answers.py)."""
    from services.beteiligte.fieldmap import FIELDS
    from services.ops.actions import outcome_dict
    from services.ops.answers import reported
    from services.sync.model import Trigger

    if field not in FIELDS:
        raise OperationError(f"unknown field {field!r}; fields: {', '.join(sorted(FIELDS))}")
    with reported(f"restore of {field} of record {record_id}"):
        async with rt.engine.locks.holding(record_id):
            plan = await _write_restore(rt, record_id, field)
        log.info("record %s: %s restored to the Advoware value; syncing", record_id, field)
        outcome = await rt.engine.sync_record(record_id, Trigger.MANUAL)
    return {"restored": field, "conflict_at": plan.conflict_at, "sync": outcome_dict(outcome)}


def _recorded(entries: Sequence[Mapping[str, Any]], plan: RestorePlan) -> bool:
    """Whether the history already holds this restore (a repeat after a lost answer)."""
    return any(
        e.get("trigger") == TRIGGER and plan.field in (e.get("fields_to_espocrm") or ())
        for e in entries
        if str(e.get("at")) > plan.conflict_at
    )


async def _write_restore(rt: Runtime, record_id: str, field: str) -> RestorePlan:
    """Under the record's lock: decide, write EspoCRM (versioned) and record the decision."""
    from services.beteiligte import mapper
    from services.errors import NotFoundError, VersionConflictError
    from services.ops.history import HistoryEntry, history_for
    from services.sync.model import ENTITY

    try:
        espo = await rt.espo.get(ENTITY, record_id)
    except NotFoundError:
        raise OperationError(f"no EspoCRM record {record_id}", 404) from None
    betnr = espo.get("betnr")
    if not betnr:
        raise OperationError(f"record {record_id} is not linked to an Advoware party", 409)
    advo = await rt.advo.get_beteiligter(int(betnr))
    history = history_for(rt.redis, rt.settings)
    entries = await history.entries(record_id)
    plan = decide_restore(entries, field, mapper.from_espo(espo), mapper.from_advo(advo))
    if not plan.written:
        content = {**mapper.from_espo(espo), field: plan.value}
        patch = mapper.to_espo_patch(content, [field], current=espo, record_id=record_id)
        try:
            await rt.espo.update(ENTITY, record_id, patch, version_number=espo.get("versionNumber"))
        except VersionConflictError:
            raise OperationError(
                f"record {record_id} was saved in EspoCRM just now; try again", 409
            ) from None
    if not _recorded(entries, plan):
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
    return plan


async def restore_request(rt: Runtime, body: Any) -> dict[str, Any]:
    """`POST /vmh/beteiligte/sync/restore` with `{"id": "<EspoCRM id>", "field": "<field>"}`."""
    if not isinstance(body, Mapping) or not all(
        isinstance(body.get(k), str) and body[k].strip() for k in ("id", "field")
    ):
        raise OperationError('expected {"id": "<EspoCRM id>", "field": "<canonical field, e.g. title>"}')
    return await restore(rt, body["id"].strip(), body["field"].strip())
