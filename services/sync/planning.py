"""Read-only planning: what a sync of a record or a pair would write. GETs and the snapshot
only - no lock, no write anywhere. Used by the update path (services/sync/update.py), by
`sync --dry-run` and by `backfill --dry-run`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.errors import ApiError, NotFoundError
from services.espocrm.fields import ADVOWARE_LAST_SYNC, SYNC_STATUS
from services.sync import fingerprint, in_doubt
from services.sync.decide import MergePlan, decide
from services.sync.model import ENTITY, PARKED, Trigger, as_int, stays_parked
from services.sync.snapshot import Snapshot
from services.sync.states import SyncStatus
from services.sync.verify import ADVO_BASELINE, ESPO_BASELINE

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from services.sync.deps import PlanningDeps

log = logging.getLogger(__name__)

# Without a snapshot and without knowing who saved last, a change time within this window
# after advowareLastSync is taken to be our own write, not a person's edit (`espo_changed`).
OWN_WRITE_TOLERANCE = timedelta(seconds=30)


@dataclass
class RecordPlan:
    """Result of `Planner.plan_record`. `action`: create | update | none | parked |
    deleted_in_advoware | not_found. `espo` / `advo` are the canonical contents read."""

    record_id: str
    action: str
    status: str | None = None
    betnr: int | None = None
    plan: MergePlan | None = None
    espo: dict[str, Any] | None = None
    advo: dict[str, Any] | None = None
    has_snapshot: bool = False
    reason: str | None = None


class Planner:
    def __init__(self, deps: PlanningDeps) -> None:
        self._d = deps
        self._own_user: str | None = None

    async def plan_pair(
        self,
        record_id: str,
        espo: Mapping[str, Any],
        advo: Mapping[str, Any],
        betnr: int,
        base: Mapping[str, Any] | None = None,
    ) -> tuple[MergePlan, Snapshot | None]:
        """What a sync of this pair would write (reads only the snapshot; writes nothing).
        `base` replaces the snapshot's content: what an interrupted attempt of this run already
        wrote to Advoware (services/sync/update.py, decide again after a version conflict). The
        snapshot returned is settled: an earlier run's writes whose answers were lost are its
        content where the side holds them (services/sync/in_doubt.py)."""
        from services.beteiligte import mapper

        snap = await self._d.snapshots.get(record_id)
        if snap is not None and snap.betnr != betnr:
            snap = None  # relinked by a person: the old snapshot belongs to another pair
        espo_content, advo_content = mapper.from_espo(espo), mapper.from_advo(advo)
        if snap is not None and snap.in_doubt:
            snap = in_doubt.settle(snap, espo_content, advo_content)
        # No snapshot (Redis emptied): the record's fingerprint still says who changed each field.
        prints = fingerprint.read(espo, betnr) if snap is None and base is None else None
        plan = decide(
            espo_content,
            advo_content,
            dict(base) if base is not None else (snap.content if snap else None),
            # Only read without a snapshot: the API user is looked up only then.
            espo_changed_since_sync=(
                espo_changed(espo, await self.own_user())
                if snap is None and base is None and not prints
                else None
            ),
            advo_changed_since_sync=advo_changed(espo, advo, self._d.systems.tz),
            # Fields a write did not apply: compared with what that side stored (verify.py).
            advo_baseline=snap.extra.get(ADVO_BASELINE) if snap else None,
            espo_baseline=snap.extra.get(ESPO_BASELINE) if snap else None,
            fields_changed=prints.changed(espo_content, advo_content) if prints else None,
            directions=self._d.directions,
        )
        return plan, snap

    async def own_user(self) -> str | None:
        """The id of the EspoCRM user the service writes as (`GET App/user`, once per process:
        planning writes nothing, not even a cache); None if EspoCRM does not say
        (`espo_changed` then uses its time rule only)."""
        if self._own_user is None:
            try:
                answer = await self._d.systems.espo.get("App", "user")
            except ApiError as exc:
                log.warning("EspoCRM did not name the API user (App/user: %s)", exc.status_code)
                return None
            user = answer.get("user") if isinstance(answer, Mapping) else None
            own = user.get("id") if isinstance(user, Mapping) else None
            self._own_user = str(own) if own else None
        return self._own_user

    async def plan_record(self, record_id: str, trigger: Trigger = Trigger.MANUAL) -> RecordPlan:
        """The dry run of `SyncEngine.sync_record`: GETs only, no lock, no write anywhere."""
        from services.beteiligte import mapper

        try:
            espo = await self._d.systems.espo.get(ENTITY, record_id)
        except NotFoundError:
            return RecordPlan(record_id, "not_found", reason="not in EspoCRM")
        status = SyncStatus.parse(espo.get(SYNC_STATUS))
        betnr = as_int(espo.get("betnr"))
        out = RecordPlan(record_id, "update", status=status.value, betnr=betnr, espo=mapper.from_espo(espo))
        if status in PARKED and stays_parked(status, espo, trigger):
            out.action, out.reason = "parked", f"parked as {status.value}"
            return out
        if betnr is None:
            out.action = "create"
            if await self._d.intents.get(record_id) is not None:
                out.reason = "an interrupted create will be completed (no second record)"
            else:
                await self._identity_preview(out, out.espo)
            return out
        try:
            advo = await self._d.systems.advo.get_beteiligter(betnr)
        except NotFoundError:
            out.action, out.reason = "deleted_in_advoware", f"betnr {betnr} not found in Advoware"
            return out
        out.advo = mapper.from_advo(advo)
        out.plan, snap = await self.plan_pair(record_id, espo, advo, betnr)
        out.has_snapshot = snap is not None
        if out.plan.is_noop:
            out.action = "none"
        return out

    async def _identity_preview(self, out: RecordPlan, content: Mapping[str, Any] | None) -> None:
        """What the identity check would decide, from the index as it is (Redis reads only)."""
        from services.beteiligte.identity import identity_of_content
        from services.sync.linking import Action, choose

        index = self._d.index
        if content is None or not await index.ready():
            out.reason = "the identity index is not ready: the create would wait for it"
            return
        decision = choose(await index.candidates(identity_of_content(content)))
        if decision.action is Action.LINK:
            out.action, out.betnr = "link", decision.betnr
            out.reason = f"the party exists in Advoware ({decision.rule}): would link betnr {decision.betnr}"
        elif decision.action is Action.HOLD:
            out.action, out.reason = "hold", decision.message


def advo_changed(espo: Mapping[str, Any], advo: Mapping[str, Any], tz: ZoneInfo) -> bool | None:
    """Edited in Advoware since the last sync (None: not known, no timestamps). Compared at the
    stamps' one-second resolution; advowareLastSync is never before the stamp of the service's own
    last write (`synced_until`), so that write is not taken for an edit."""
    from services.advoware.timezone import local_to_utc
    from services.espocrm.datetime import parse_espo_datetime

    last, changed = espo.get(ADVOWARE_LAST_SYNC), advo.get("geaendertAm")
    if not last or not changed:
        return None
    return local_to_utc(changed, tz).replace(microsecond=0) > parse_espo_datetime(last)


def synced_until(now: datetime, advo: Mapping[str, Any] | None, tz: ZoneInfo) -> datetime:
    """The advowareLastSync a sync writes: `now`, taken after its Advoware write (so a sync that
    waited long for Advoware is not mistaken for a later EspoCRM edit by `espo_changed`), and
    never before the change stamp of the Advoware record both sides now hold - the answer to our
    own PUT, or the record as read - so `advo_changed` never takes the service's own last write
    (or the edit it just synced) for a new edit, even when Advoware's clock runs ahead. Without a
    snapshot (Redis emptied) this is what tells a one-sided edit from a conflict."""
    from services.advoware.timezone import local_to_utc

    stamp = (advo or {}).get("geaendertAm")
    if not stamp:
        return now
    return max(now, local_to_utc(stamp, tz))


def espo_changed(espo: Mapping[str, Any], own_user: str | None = None) -> bool | None:
    """Edited in EspoCRM since the last sync (None: not known, no timestamps).

    The record's last save says who saved last (`modifiedById`; `own_user`: the service's API
    user): someone else's save came after the service's last write, which it would otherwise be
    - an edit, however soon after the sync; the service's own last save of a `clean` record is
    its sync (or a note after it) - no edit, however long the sync's EspoCRM write took. Otherwise
    (the API user not known, or the service's last save was a failure or hold write, possibly
    after an edit): modifiedAt against advowareLastSync, with OWN_WRITE_TOLERANCE for the time
    between taking advowareLastSync and EspoCRM storing the write."""
    from services.espocrm.datetime import parse_espo_datetime

    last, modified = espo.get(ADVOWARE_LAST_SYNC), espo.get("modifiedAt")
    if not last or not modified:
        return None
    saved_by = espo.get("modifiedById")
    if own_user and saved_by:
        if saved_by != own_user:
            return True
        if espo.get(SYNC_STATUS) == SyncStatus.CLEAN.value:
            return False
    return parse_espo_datetime(modified) > parse_espo_datetime(last) + OWN_WRITE_TOLERANCE
