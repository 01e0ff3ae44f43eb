"""Planning a backfill: read both databases (paged lists only), match them
(services/backfill/matching.py) and turn the report into `Action`s. With `detail` (the dry
run) each pair that needs a sync is also planned field by field (one GET per pair). Writes
nothing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from services.backfill.matching import Ambiguity, Link, MatchReport, match_records
from services.espocrm.fields import ADVOWARE_LAST_SYNC, SYNC_ERROR_MESSAGE, SYNC_STATUS
from services.sync.decide import change_rows
from services.sync.deps import Systems
from services.sync.model import ENTITY, as_int
from services.sync.states import SyncStatus

if TYPE_CHECKING:
    from services.sync.engine import SyncEngine

# What the matching needs from an EspoCRM list row (lists carry only the primary e-mail/phone).
ESPO_SELECT = (
    "id,name,firstName,lastName,salutationName,beteiligterTyp,titel,geburtsdatum,rechtsform,"
    "handelsregisterNummer,registergericht,emailAddress,phoneNumber,betnr,"
    f"{SYNC_STATUS},{SYNC_ERROR_MESSAGE},modifiedAt,{ADVOWARE_LAST_SYNC}"
)
# syncErrorMessage of a record the backfill holds as a possible duplicate.
PARK_PREFIX = "Backfill:"


class Progress(Protocol):
    def update(self, n: int = 1) -> Any: ...
    def close(self) -> Any: ...


ProgressFactory = Callable[[int | None, str], Progress]


class _NoProgress:
    def update(self, n: int = 1) -> None:
        return None

    def close(self) -> None:
        return None


def no_progress(total: int | None, desc: str) -> Progress:
    return _NoProgress()


class ActionKind(StrEnum):
    PARK = "park"  # hold an ambiguous EspoCRM record as `conflict`
    LINK = "link"  # write the matched betnr into EspoCRM, then sync the pair
    SYNC = "sync"  # a betnr pair never synced (or not clean): sync it
    CREATE = "create"  # EspoCRM-only: create in Advoware through the engine
    CREATE_ESPO = "create_espo"  # Advoware-only, with `create_in_espocrm`


# The order a run executes them in: holds first (they protect), then links and syncs, then creates.
PHASES: tuple[frozenset[ActionKind], ...] = (
    frozenset({ActionKind.PARK}),
    frozenset({ActionKind.LINK, ActionKind.SYNC}),
    frozenset({ActionKind.CREATE, ActionKind.CREATE_ESPO}),
)


@dataclass
class Action:
    kind: ActionKind
    item: str  # checkpoint key: "e:<id>" or "a:<betnr>"
    espo_id: str | None = None
    betnr: int | None = None
    detail: str | None = None


@dataclass
class PairPlan:
    espo_id: str
    betnr: int
    to_advo: list[str]
    to_espo: list[str]
    conflicts: list[str]
    basis: str
    fields: list[dict[str, Any]] = field(default_factory=list)  # decide.change_rows: the values


@dataclass
class BackfillPlan:
    report: MatchReport
    espo_read: int
    advo_read: int
    in_sync: list[Link]  # betnr pairs the service already synced: left alone
    actions: list[Action]
    updates: list[PairPlan] = field(default_factory=list)  # dry run: per pair, what a sync writes
    advo_newest: datetime | None = None
    read_started: datetime | None = None

    def counts(self) -> dict[str, int]:
        kinds = Counter(a.kind for a in self.actions)
        return {
            "espocrm_records": self.espo_read,
            "advoware_records": self.advo_read,
            **self.report.summary(),
            "pairs_in_sync": len(self.in_sync),
            "to_link": kinds[ActionKind.LINK],
            "to_sync": kinds[ActionKind.SYNC],
            "to_create_in_advoware": kinds[ActionKind.CREATE],
            "to_create_in_espocrm": kinds[ActionKind.CREATE_ESPO],
            "to_hold": kinds[ActionKind.PARK],
        }


@dataclass
class _Read:
    espo_rows: list[dict[str, Any]]
    advo_rows: list[dict[str, Any]]
    advo_newest: datetime | None  # newest geaendertAm seen (UTC): seeds the change poll
    started: datetime


@dataclass(kw_only=True)
class BackfillPlanner:
    systems: Systems
    engine: SyncEngine
    create_in_espocrm: bool
    concurrency: int
    progress: ProgressFactory

    async def plan(self, *, detail: bool = False) -> BackfillPlan:
        """Read and match; with `detail` also GET each pair that needs a sync and plan it field
        by field (what a dry run shows). Writes nothing."""
        read = await self._read()
        report = match_records(read.espo_rows, read.advo_rows)
        espo_by_id = {str(r["id"]): r for r in read.espo_rows}
        advo_by_nr = {int(r["betNr"]): r for r in read.advo_rows if as_int(r.get("betNr")) is not None}
        in_sync, syncs = await self._betnr_pairs(report, espo_by_id, advo_by_nr)
        actions = _park_actions(report, espo_by_id)
        actions += [
            Action(ActionKind.LINK, f"e:{link.espo_id}", link.espo_id, link.betnr, link.rule)
            for link in report.linked_by_identity
        ]
        actions += syncs
        actions += [Action(ActionKind.CREATE, f"e:{rid}", espo_id=rid) for rid in report.espo_only]
        if self.create_in_espocrm:
            actions += [Action(ActionKind.CREATE_ESPO, f"a:{b}", betnr=b) for b in report.advo_only]
        plan = BackfillPlan(
            report=report,
            espo_read=len(read.espo_rows),
            advo_read=len(read.advo_rows),
            in_sync=in_sync,
            actions=actions,
            advo_newest=read.advo_newest,
            read_started=read.started,
        )
        if detail:
            pairs = [a for a in actions if a.kind in (ActionKind.LINK, ActionKind.SYNC)]
            plan.updates = await self._plan_pairs(pairs, advo_by_nr)
        return plan

    async def _read(self) -> _Read:
        from services.advoware.timezone import local_to_utc

        started = self.systems.clock()
        espo_rows: list[dict[str, Any]] = []
        bar = self.progress(None, "read EspoCRM")
        try:
            async for row in self.systems.espo.iterate(ENTITY, select=ESPO_SELECT):
                espo_rows.append(row)
                bar.update(1)
        finally:
            bar.close()
        advo_rows: list[dict[str, Any]] = []
        newest: datetime | None = None
        bar = self.progress(None, "read Advoware")
        try:
            async for row in self.systems.advo.iter_beteiligte():
                advo_rows.append(row)
                if row.get("geaendertAm"):
                    try:
                        stamp = local_to_utc(row["geaendertAm"], self.systems.tz)
                    except ValueError:
                        stamp = None
                    if stamp is not None and (newest is None or stamp > newest):
                        newest = stamp
                bar.update(1)
        finally:
            bar.close()
        return _Read(espo_rows, advo_rows, newest, started)

    async def _betnr_pairs(
        self,
        report: MatchReport,
        espo_by_id: Mapping[str, Mapping[str, Any]],
        advo_by_nr: Mapping[int, Mapping[str, Any]],
    ) -> tuple[list[Link], list[Action]]:
        """Betnr pairs the service already synced (clean, same snapshot) are left alone; the
        others get a sync."""
        from services.beteiligte import mapper

        snaps = await self.engine.snapshots.get_many([link.espo_id for link in report.linked_by_betnr])
        in_sync: list[Link] = []
        syncs: list[Action] = []
        for link in report.linked_by_betnr:
            snap = snaps.get(link.espo_id)
            row = espo_by_id[link.espo_id]
            if (
                snap is not None
                and snap.betnr == link.betnr
                and row.get(SYNC_STATUS) == SyncStatus.CLEAN
                and snap.content_hash == mapper.content_hash(mapper.from_advo(advo_by_nr[link.betnr]))
            ):
                in_sync.append(link)
            else:
                syncs.append(Action(ActionKind.SYNC, f"e:{link.espo_id}", link.espo_id, link.betnr))
        return in_sync, syncs

    async def _plan_pairs(self, pairs: list[Action], advo_by_nr: Mapping[int, Any]) -> list[PairPlan]:
        sem = asyncio.Semaphore(self.concurrency)
        bar = self.progress(len(pairs), "plan pairs")
        out: list[PairPlan] = []

        async def one(action: Action) -> None:
            assert action.espo_id is not None and action.betnr is not None
            async with sem:
                full = await self.systems.espo.get(ENTITY, action.espo_id)
                full = {**full, "betnr": action.betnr}
                plan, _snap = await self.engine.plan_pair(
                    action.espo_id, full, advo_by_nr[action.betnr], action.betnr
                )
            if not plan.is_noop:
                out.append(
                    PairPlan(
                        action.espo_id,
                        action.betnr,
                        sorted(plan.to_advo),
                        sorted(plan.to_espo),
                        sorted(c.field for c in plan.conflicts),
                        plan.basis.value,
                        change_rows(plan),
                    )
                )
            bar.update(1)

        try:
            await asyncio.gather(*(one(a) for a in pairs))
        finally:
            bar.close()
        out.sort(key=lambda p: p.espo_id)
        return out


def _park_actions(report: MatchReport, espo_by_id: Mapping[str, Mapping[str, Any]]) -> list[Action]:
    actions: list[Action] = []
    for rid, amb in sorted(report.ambiguous_espo_ids().items()):
        row = espo_by_id[rid]
        reason = park_message(amb)
        if row.get(SYNC_STATUS) == SyncStatus.CONFLICT and row.get(SYNC_ERROR_MESSAGE) == reason:
            continue  # already held with this reason
        actions.append(Action(ActionKind.PARK, f"e:{rid}", espo_id=rid, detail=reason))
    return actions


def park_message(amb: Ambiguity) -> str:
    """German, for the firm's staff (shown in syncErrorMessage); ids only, no personal data."""
    candidates = ", ".join(str(b) for b in amb.betnrs[:8]) or "keine"
    if len(amb.betnrs) > 8:
        candidates += ", …"
    peers = len(amb.espo_ids) - 1
    text = (
        f"{PARK_PREFIX} mögliche Dublette, nicht automatisch verknüpft. Advoware-Kandidaten: {candidates}"
        + (f"; {peers} ähnliche(r) EspoCRM-Datensatz/-sätze" if peers > 0 else "")
        + ". Bitte betnr setzen (verknüpfen) oder per ops `sync <id>` neu anlegen."
    )
    return text[:250]
