"""First run: link the pairs that already exist in both systems, then create only what is
really missing. The rule is documented in docs/backfill.md.

Two halves:

* **matching** (pure, no I/O): `identity_of_espo` / `identity_of_advo` turn a record into an
  `Identity`; `compare` says whether two identities are the same party (STRONG), might be
  (WEAK: reported, never guessed) or are not; `match_records` sorts both databases into
  linked-by-betnr, linked-by-identity, ambiguous, EspoCRM-only, Advoware-only and conflicts.
* **running** (`Backfill`): reads both databases (paged lists only), matches, and then
  - writes `betnr` into EspoCRM for identity pairs and lets the engine reconcile content,
  - syncs betnr pairs that have never been synced (no snapshot) through the engine,
  - creates EspoCRM-only records in Advoware through the engine (idempotent via intents),
  - holds ambiguous EspoCRM records as `conflict` (a person decides; the sweep leaves them),
  - reports Advoware-only records (creates them in EspoCRM only with `create_in_espocrm`).
  A dry run does the reads (plus one GET per pair to plan field by field) and writes nothing.
  A real run is resumable: every finished item is checkpointed in Redis, and while it works
  it holds `vmh:backfill:running`, which makes the service defer its own creates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from services.beteiligte.identity import (
    Identity,
    Match,
    Strength,
    compare,
    identity_of_advo,
    identity_of_espo,
    lookup_keys,
)
from services.errors import ApiError, BackfillAbortedError, BackfillBusyError, TransientError
from services.redis_store import key
from services.sync.decide import change_rows
from services.sync.engine import BACKFILL_RUNNING, ENTITY, Outcome, Result, Trigger
from services.sync.states import SyncStatus, can_transition, transition

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from redis.asyncio import Redis

    from services.sync.engine import SyncEngine

log = logging.getLogger(__name__)

# What the matching needs from an EspoCRM list row (lists carry only the primary e-mail/phone).
ESPO_SELECT = (
    "id,name,firstName,lastName,salutationName,beteiligterTyp,titel,geburtsdatum,rechtsform,"
    "handelsregisterNummer,registergericht,emailAddress,phoneNumber,betnr,syncStatus,"
    "syncErrorMessage,modifiedAt,advowareLastSync"
)
RUN_STATE = key("backfill", "run")
LOCK_TTL_SECONDS = 120
CHECKPOINT_TTL_SECONDS = 30 * 24 * 3600
PARK_PREFIX = "Backfill:"


# =========================================================================== matching


@dataclass(frozen=True)
class Link:
    espo_id: str
    betnr: int
    rule: str


@dataclass
class Ambiguity:
    """Records that might be the same party: nothing is linked or created for them."""

    espo_ids: list[str]
    betnrs: list[int]
    reasons: list[str]


@dataclass
class LinkConflict:
    """A betnr in EspoCRM that cannot be a link as it stands."""

    betnr: int
    espo_ids: list[str]
    reason: str


@dataclass
class MatchReport:
    linked_by_betnr: list[Link] = field(default_factory=list)
    linked_by_identity: list[Link] = field(default_factory=list)
    ambiguous: list[Ambiguity] = field(default_factory=list)
    espo_only: list[str] = field(default_factory=list)  # to create in Advoware
    advo_only: list[int] = field(default_factory=list)  # report (EspoCRM only on request)
    conflicts: list[LinkConflict] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "linked_by_betnr": len(self.linked_by_betnr),
            "linked_by_identity": len(self.linked_by_identity),
            "ambiguous": len(self.ambiguous),
            "ambiguous_espocrm_records": sum(len(a.espo_ids) for a in self.ambiguous),
            "espo_only": len(self.espo_only),
            "advo_only": len(self.advo_only),
            "conflicts": len(self.conflicts),
        }

    def ambiguous_espo_ids(self) -> dict[str, Ambiguity]:
        return {i: a for a in self.ambiguous for i in a.espo_ids}


def _as_int(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _duplicates(nodes: Iterable[Any], ident: Mapping[Any, Identity]) -> list[tuple[Any, Any, Match]]:
    """STRONG matches among records of one system (bucketed by name)."""
    same: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for n in nodes:
        if ident[n].usable:
            same[(ident[n].kind, ident[n].name)].append(n)
    out: list[tuple[Any, Any, Match]] = []
    for members in same.values():
        members.sort(key=str)
        for i, x in enumerate(members):
            for y in members[i + 1 :]:
                m = compare(ident[x], ident[y])
                if m.strength is Strength.STRONG:
                    out.append((x, y, m))
    return out


class _Groups:
    """Union-find over node names ("e:<id>", "a:<betnr>")."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def match_records(
    espo_rows: Iterable[Mapping[str, Any]],
    advo_rows: Iterable[Mapping[str, Any]],
    *,
    espo_identities: Mapping[str, Identity] | None = None,
    advo_identities: Mapping[int, Identity] | None = None,
) -> MatchReport:
    """Sort both databases into the backfill's categories (pure; see docs/backfill.md).

    1. betnr first: an EspoCRM betnr naming an existing Advoware record is a link; one naming no
       record, or named by several EspoCRM records, is a conflict (reported, not touched).
    2. The rest by identity: a link needs exactly one STRONG candidate on each side (mutual);
       any other candidate (several, only WEAK ones, or one already linked) makes the records
       ambiguous; records without any candidate are EspoCRM-only / Advoware-only.
    3. EspoCRM-only (Advoware-only) records that are STRONG matches of each other are
       duplicates within one system: ambiguous too, so neither is copied twice.
    """
    espo = {str(r["id"]): r for r in espo_rows}
    advo: dict[int, Mapping[str, Any]] = {}
    for r in advo_rows:
        b = _as_int(r.get("betNr"))
        if b is not None:
            advo[b] = r
    e_id = dict(espo_identities or {})
    a_id = dict(advo_identities or {})
    for rid, row in espo.items():
        if rid not in e_id:
            e_id[rid] = identity_of_espo(row)
    for b, row in advo.items():
        if b not in a_id:
            a_id[b] = identity_of_advo(row)

    report = MatchReport()
    # ---- 1. by betnr
    by_betnr: dict[int, list[str]] = defaultdict(list)
    free_espo: list[str] = []
    for rid, row in espo.items():
        b = _as_int(row.get("betnr"))
        if b is None:
            free_espo.append(rid)
        else:
            by_betnr[b].append(rid)
    linked_espo: dict[str, int] = {}
    linked_advo: dict[int, str] = {}
    for b, ids in sorted(by_betnr.items()):
        if b not in advo:
            report.conflicts.append(LinkConflict(b, sorted(ids), "betnr not found in Advoware"))
        elif len(ids) > 1:
            report.conflicts.append(LinkConflict(b, sorted(ids), "betnr used by several EspoCRM records"))
        else:
            report.linked_by_betnr.append(Link(ids[0], b, "betnr"))
            linked_espo[ids[0]] = b
            linked_advo[b] = ids[0]
    claimed = {b for b in by_betnr if b in advo}  # conflicting ones stay out of identity matching
    free_advo = [b for b in advo if b not in claimed]

    # ---- 2. candidates by identity (bucketed, so the cost is linear in the database size)
    buckets: dict[str, tuple[list[str], list[int]]] = defaultdict(lambda: ([], []))
    for rid in espo:
        if e_id[rid].usable:
            for bk in lookup_keys(e_id[rid]):
                buckets[bk][0].append(rid)
    for b in advo:
        if a_id[b].usable:
            for bk in lookup_keys(a_id[b]):
                buckets[bk][1].append(b)
    edges: dict[tuple[str, int], Match] = {}
    for e_ids, a_ids in buckets.values():
        for rid in e_ids:
            for b in a_ids:
                if (rid, b) in edges:
                    continue
                m = compare(e_id[rid], a_id[b])
                if m:
                    edges[(rid, b)] = m
    free_e, free_a = set(free_espo), set(free_advo)
    cand_e: dict[str, list[tuple[int, Match]]] = defaultdict(list)
    cand_a: dict[int, list[tuple[str, Match]]] = defaultdict(list)
    for (rid, b), m in edges.items():
        if linked_espo.get(rid) == b:
            continue  # the pair itself
        cand_e[rid].append((b, m))
        cand_a[b].append((rid, m))

    def strong(cands: Sequence[tuple[Any, Match]]) -> list[Any]:
        return [n for n, m in cands if m.strength is Strength.STRONG]

    resolved: set[str] = {f"e:{i}" for i in linked_espo} | {f"a:{b}" for b in linked_advo}
    for rid in sorted(free_e):
        s = strong(cand_e[rid])
        if len(s) == 1 and s[0] in free_a:
            b = s[0]
            back = strong(cand_a[b])
            if back == [rid]:
                report.linked_by_identity.append(Link(rid, b, edges[(rid, b)].rule))
                resolved.update({f"e:{rid}", f"a:{b}"})

    # ---- 3. duplicates within one system, among records without a counterpart
    groups = _Groups()
    reasons: dict[str, set[str]] = defaultdict(set)
    for (rid, b), m in edges.items():
        if linked_espo.get(rid) == b or (f"e:{rid}" in resolved and f"a:{b}" in resolved):
            continue
        groups.union(f"e:{rid}", f"a:{b}")
        for node, other in ((f"e:{rid}", f"a:{b}"), (f"a:{b}", f"e:{rid}")):
            if node in resolved:
                continue
            if other in resolved:
                reasons[node].add(f"candidate already linked ({m.rule})")
            elif m.strength is Strength.WEAK:
                reasons[node].add(m.rule)
            else:
                reasons[node].add(f"several candidates ({m.rule})")
    for side, nodes, ident in (
        ("e", [i for i in free_e if not cand_e[i]], e_id),
        ("a", [b for b in free_a if not cand_a[b]], a_id),
    ):
        system = "EspoCRM" if side == "e" else "Advoware"
        for x, y, m in _duplicates(nodes, ident):
            groups.union(f"{side}:{x}", f"{side}:{y}")
            reasons[f"{side}:{x}"].add(f"duplicate within {system} ({m.rule})")
            reasons[f"{side}:{y}"].add(f"duplicate within {system} ({m.rule})")

    # ---- 4. collect
    components: dict[str, list[str]] = defaultdict(list)
    for node in list(groups.parent):
        components[groups.find(node)].append(node)
    ambiguous_nodes: set[str] = set()
    for members in components.values():
        open_nodes = [n for n in members if n not in resolved and reasons.get(n)]
        if not open_nodes:
            continue
        ambiguous_nodes.update(open_nodes)
        report.ambiguous.append(
            Ambiguity(
                espo_ids=sorted(n[2:] for n in open_nodes if n.startswith("e:")),
                betnrs=sorted(int(n[2:]) for n in members if n.startswith("a:")),
                reasons=sorted({r for n in open_nodes for r in reasons[n]}),
            )
        )
    report.ambiguous.sort(key=lambda a: (a.espo_ids, a.betnrs))
    report.espo_only = sorted(
        i for i in free_e if f"e:{i}" not in resolved and f"e:{i}" not in ambiguous_nodes
    )
    report.advo_only = sorted(
        b for b in free_a if f"a:{b}" not in resolved and f"a:{b}" not in ambiguous_nodes
    )
    report.linked_by_identity.sort(key=lambda link: link.espo_id)
    return report


# =========================================================================== running


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


class BackfillBusy(BackfillBusyError):
    """Another backfill holds the lock."""


class BackfillAborted(BackfillAbortedError):
    """The run stopped before its end; finished items are checkpointed, a rerun resumes."""


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
class Action:
    kind: str  # park | link | sync | create | create_espo
    item: str  # checkpoint key: "e:<id>" or "a:<betnr>"
    espo_id: str | None = None
    betnr: int | None = None
    detail: str | None = None


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
            "to_link": kinds["link"],
            "to_sync": kinds["sync"],
            "to_create_in_advoware": kinds["create"],
            "to_create_in_espocrm": kinds["create_espo"],
            "to_hold": kinds["park"],
        }


@dataclass
class BackfillResult:
    run_id: str | None
    dry_run: bool
    plan: BackfillPlan
    resumed: bool = False
    already_done: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, str]] = field(default_factory=list)
    created_in_advoware: list[dict[str, Any]] = field(default_factory=list)
    created_in_espocrm: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False
    watermark_seeded: bool = False

    def to_dict(self) -> dict[str, Any]:
        r = self.plan.report
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "finished": self.finished,
            "resumed": self.resumed,
            "already_done": self.already_done,
            "counts": self.plan.counts(),
            "outcomes": dict(self.outcomes),
            "failures": self.failures,
            "linked_by_identity": [asdict(x) for x in r.linked_by_identity],
            "ambiguous": [asdict(x) for x in r.ambiguous],
            "espo_only": r.espo_only,
            "advo_only": r.advo_only,
            "conflicts": [asdict(x) for x in r.conflicts],
            "updates": [asdict(x) for x in self.plan.updates],
            "created_in_advoware": self.created_in_advoware,
            "created_in_espocrm": self.created_in_espocrm,
            "watermark_seeded": self.watermark_seeded,
        }


class Backfill:
    """Reads both systems, matches, and (unless dry) links, syncs, creates and holds.

    `engine` is the service's `SyncEngine`; the backfill switches off its create deferral on
    that instance (it holds the backfill lock itself)."""

    def __init__(
        self,
        *,
        espo: Any,
        advo: Any,
        redis: Redis,
        engine: SyncEngine,
        tz: ZoneInfo,
        create_in_espocrm: bool = False,
        concurrency: int = 8,
        max_consecutive_failures: int = 25,
        progress: ProgressFactory = no_progress,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.espo = espo
        self.advo = advo
        self.redis = redis
        self.engine = engine
        self.tz = tz
        self.create_in_espocrm = create_in_espocrm
        self.concurrency = max(1, concurrency)
        self.max_consecutive_failures = max_consecutive_failures
        self.progress = progress
        self.now = clock or (lambda: datetime.now(UTC))
        self._lock_token: str | None = None
        self._consecutive_failures = 0
        self._locked: list[Action] = []

    # ------------------------------------------------------------------ reading + planning
    async def read(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], datetime | None, datetime]:
        from services.advoware.timezone import local_to_utc

        started = self.now()
        espo_rows: list[dict[str, Any]] = []
        bar = self.progress(None, "read EspoCRM")
        try:
            async for row in self.espo.iterate(ENTITY, select=ESPO_SELECT):
                espo_rows.append(row)
                bar.update(1)
        finally:
            bar.close()
        advo_rows: list[dict[str, Any]] = []
        newest: datetime | None = None
        bar = self.progress(None, "read Advoware")
        try:
            async for row in self.advo.iter_beteiligte():
                advo_rows.append(row)
                if row.get("geaendertAm"):
                    try:
                        stamp = local_to_utc(row["geaendertAm"], self.tz)
                    except ValueError:
                        stamp = None
                    if stamp is not None and (newest is None or stamp > newest):
                        newest = stamp
                bar.update(1)
        finally:
            bar.close()
        return espo_rows, advo_rows, newest, started

    async def plan(self, *, detail: bool = False) -> BackfillPlan:
        """Read and match; with `detail` also GET each pair that needs a sync and plan it field
        by field (what a dry run shows). Writes nothing."""
        from services.beteiligte import mapper

        espo_rows, advo_rows, newest, started = await self.read()
        report = match_records(espo_rows, advo_rows)
        espo_by_id = {str(r["id"]): r for r in espo_rows}
        advo_by_nr = {int(r["betNr"]): r for r in advo_rows if _as_int(r.get("betNr")) is not None}

        snaps = await self.engine.snapshots.get_many([link.espo_id for link in report.linked_by_betnr])
        in_sync: list[Link] = []
        actions: list[Action] = []
        ambiguous = report.ambiguous_espo_ids()
        for rid, amb in sorted(ambiguous.items()):
            row = espo_by_id[rid]
            reason = _park_message(amb)
            if row.get("syncStatus") == SyncStatus.CONFLICT and row.get("syncErrorMessage") == reason:
                continue  # already held with this reason
            actions.append(Action("park", f"e:{rid}", espo_id=rid, detail=reason))
        for link in report.linked_by_identity:
            actions.append(Action("link", f"e:{link.espo_id}", link.espo_id, link.betnr, link.rule))
        for link in report.linked_by_betnr:
            snap = snaps.get(link.espo_id)
            row = espo_by_id[link.espo_id]
            if (
                snap is not None
                and snap.betnr == link.betnr
                and row.get("syncStatus") == SyncStatus.CLEAN
                and snap.content_hash == mapper.content_hash(mapper.from_advo(advo_by_nr[link.betnr]))
            ):
                in_sync.append(link)
            else:
                actions.append(Action("sync", f"e:{link.espo_id}", link.espo_id, link.betnr))
        for rid in report.espo_only:
            actions.append(Action("create", f"e:{rid}", espo_id=rid))
        if self.create_in_espocrm:
            for b in report.advo_only:
                actions.append(Action("create_espo", f"a:{b}", betnr=b))
        plan = BackfillPlan(
            report=report,
            espo_read=len(espo_rows),
            advo_read=len(advo_rows),
            in_sync=in_sync,
            actions=actions,
            advo_newest=newest,
            read_started=started,
        )
        if detail:
            pairs = [a for a in actions if a.kind in ("link", "sync")]
            plan.updates = await self._plan_pairs(pairs, advo_by_nr)
        return plan

    async def _plan_pairs(self, pairs: list[Action], advo_by_nr: Mapping[int, Any]) -> list[PairPlan]:
        sem = asyncio.Semaphore(self.concurrency)
        bar = self.progress(len(pairs), "plan pairs")
        out: list[PairPlan] = []

        async def one(action: Action) -> None:
            assert action.espo_id is not None and action.betnr is not None
            async with sem:
                full = await self.espo.get(ENTITY, action.espo_id)
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

    # ------------------------------------------------------------------ the run
    async def run(self, *, dry_run: bool = False, restart: bool = False) -> BackfillResult:
        """Dry run: plan only (GETs). Otherwise lock, resume or start a run, execute, finish."""
        if dry_run:
            plan = await self.plan(detail=True)
            return BackfillResult(run_id=None, dry_run=True, plan=plan, finished=True)
        await self._acquire_lock()
        refresher = asyncio.create_task(self._keep_lock())
        self.engine.defer_creates_during_backfill = False
        try:
            run_id, resumed = await self._open_run(restart)
            plan = await self.plan()
            result = BackfillResult(run_id=run_id, dry_run=False, plan=plan, resumed=resumed)
            await self._save_state(run_id, "running", plan)
            try:
                await self._execute(plan, result)
            except BaseException as exc:
                await self._save_state(run_id, "interrupted", plan, result, reason=type(exc).__name__)
                raise
            failed = bool(result.failures)
            if plan.read_started is not None:
                from services.sync.advoware_watch import AdvowareWatch

                watch = AdvowareWatch(espo=self.espo, advo=self.advo, redis=self.redis, tz=self.tz)
                result.watermark_seeded = await watch.seed_watermark(plan.advo_newest, plan.read_started)
            result.finished = not failed
            await self._save_state(
                run_id, "finished" if not failed else "finished_with_failures", plan, result
            )
            return result
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            await self._release_lock()

    async def _execute(self, plan: BackfillPlan, result: BackfillResult) -> None:
        assert result.run_id is not None
        done_key = checkpoint_key(result.run_id)
        done = await self.redis.hgetall(done_key)
        todo = [a for a in plan.actions if a.item not in done]
        # Items an earlier attempt of this run finished (most no longer show up in the plan at
        # all: a linked or created record is now simply an in-sync pair).
        result.already_done = len(done)
        if result.resumed:
            log.info(
                "backfill %s resumes: %d items were done before, %d still planned are skipped",
                result.run_id,
                len(done),
                len(plan.actions) - len(todo),
            )
        bar = self.progress(len(todo), "backfill")
        try:
            # Holds first (they protect), then links and syncs, then creates.
            for kinds in (("park",), ("link", "sync"), ("create", "create_espo")):
                batch = [a for a in todo if a.kind in kinds]
                sem = asyncio.Semaphore(self.concurrency)

                async def one(action: Action, sem: asyncio.Semaphore = sem) -> None:
                    async with sem:
                        outcome = await self._do(action, result)
                    if outcome is not None:
                        await self.redis.hset(done_key, action.item, outcome)
                        await self.redis.expire(done_key, CHECKPOINT_TTL_SECONDS)
                        result.outcomes[outcome.split(":", 1)[0]] += 1
                    bar.update(1)

                async with asyncio.TaskGroup() as tg:
                    for action in batch:
                        tg.create_task(one(action))
            if self._locked:
                await self._retry_locked(result, done_key)
        except BaseExceptionGroup as group:
            first = group.exceptions[0]
            if isinstance(first, BackfillAborted):
                raise first from None
            raise BackfillAborted(f"interrupted by {type(first).__name__}: {first}") from first
        finally:
            bar.close()

    async def _do(self, action: Action, result: BackfillResult) -> str | None:
        """Run one item; the returned outcome is checkpointed (None: not done, a rerun retries)."""
        try:
            if action.kind == "park":
                return await self._park(action)
            if action.kind == "link":
                await self._link(action)
                return self._sync_outcome(action, await self._sync(action), result)
            if action.kind in ("sync", "create"):
                if action.kind == "create":
                    await self._unhold(action)
                return self._sync_outcome(action, await self._sync(action), result)
            if action.kind == "create_espo":
                return await self._create_in_espocrm(action, result)
        except ApiError as exc:
            self._failure(
                action,
                result,
                f"{type(exc).__name__}: {exc}"[:300],
                transient=isinstance(exc, TransientError),
            )
            return None
        raise AssertionError(f"unknown action {action.kind}")

    async def _sync(self, action: Action) -> Outcome:
        assert action.espo_id is not None
        # A pair the backfill looked at counts as verified (advowareLastSync = now), so the
        # sweep after a backfill does not daily-check every pair again.
        # An operator's (re)run: a record failed earlier is tried now, not after its back-off.
        trigger = Trigger.RETRY_NOW if action.kind == "create" else Trigger.DAILY_CHECK
        return await self.engine.sync_record(action.espo_id, trigger)

    def _sync_outcome(self, action: Action, outcome: Outcome, result: BackfillResult) -> str | None:
        if outcome.result in (Result.FAILED, Result.PERMANENTLY_FAILED):
            self._failure(
                action,
                result,
                outcome.reason or outcome.result.value,
                transient=outcome.result is Result.FAILED,
            )
            return None
        if outcome.result is Result.LOCKED:
            # Another worker holds it - or a crashed earlier attempt, whose lock only expires
            # after the TTL. Retried at the end of the run (`_retry_locked`).
            self._locked.append(action)
            return None
        self._consecutive_failures = 0
        if outcome.result is Result.CREATED:
            result.created_in_advoware.append({"id": action.espo_id, "betnr": outcome.betnr})
        return f"{action.kind}:{outcome.result.value}"

    async def _retry_locked(self, result: BackfillResult, done_key: str) -> None:
        """Items whose record was locked: wait for each lock to go (a live worker finishes, a
        dead one's lock expires after the TTL), then run the item once more."""
        waiting, self._locked = self._locked, []
        ttl = self.engine.locks.ttl_ms / 1000
        log.warning("backfill: %d record(s) locked; waiting up to %.0f s for their locks", len(waiting), ttl)
        deadline = asyncio.get_running_loop().time() + ttl + 2
        for action in waiting:
            assert action.espo_id is not None
            while await self.engine.locks.holder(action.espo_id) is not None:
                if asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.5)
            outcome = await self._do(action, result)
            if outcome is not None:
                await self.redis.hset(done_key, action.item, outcome)
                result.outcomes[outcome.split(":", 1)[0]] += 1
        for action in self._locked:
            self._failure(
                action, result, "record locked by another worker; rerun to finish it", transient=False
            )
        self._locked = []

    def _failure(self, action: Action, result: BackfillResult, reason: str, *, transient: bool) -> None:
        result.failures.append({"item": action.item, "action": action.kind, "reason": reason})
        result.outcomes["failed"] += 1
        log.warning("backfill %s %s failed: %s", action.kind, action.item, reason)
        self._consecutive_failures = self._consecutive_failures + 1 if transient else 0
        if self._consecutive_failures >= self.max_consecutive_failures:
            raise BackfillAborted(
                f"{self._consecutive_failures} transient failures in a row (a system seems down); "
                "rerun later to resume"
            )

    async def _park(self, action: Action) -> str | None:
        """Hold an ambiguous EspoCRM record as `conflict` under its lock (the engine leaves it
        until a person links it or an operator runs `sync`)."""
        assert action.espo_id is not None
        token = await self.engine.locks.acquire(action.espo_id)
        if token is None:
            return None  # being synced right now: the rerun holds it
        try:
            current = SyncStatus.parse((await self.espo.get(ENTITY, action.espo_id)).get("syncStatus"))
            # As a worker would: current -> (pending_sync ->) syncing -> conflict.
            via = (
                current
                if can_transition(current, SyncStatus.SYNCING)
                else transition(current, SyncStatus.PENDING_SYNC)
            )
            transition(transition(via, SyncStatus.SYNCING), SyncStatus.CONFLICT)
            await self.espo.update(
                ENTITY,
                action.espo_id,
                {"syncStatus": SyncStatus.CONFLICT.value, "syncErrorMessage": action.detail},
            )
        finally:
            await self.engine.locks.release(action.espo_id, token)
        return "park:held"

    async def _unhold(self, action: Action) -> None:
        """A record held by an earlier backfill that is no longer ambiguous: release it."""
        assert action.espo_id is not None
        row = await self.espo.get(ENTITY, action.espo_id)
        if row.get("syncStatus") == SyncStatus.CONFLICT and str(row.get("syncErrorMessage") or "").startswith(
            PARK_PREFIX
        ):
            transition(SyncStatus.CONFLICT, SyncStatus.PENDING_SYNC)
            await self.espo.update(
                ENTITY,
                action.espo_id,
                {"syncStatus": SyncStatus.PENDING_SYNC.value, "syncErrorMessage": None},
            )

    async def _link(self, action: Action) -> None:
        """Write the Advoware betnr into the EspoCRM record; the engine then reconciles content."""
        assert action.espo_id is not None and action.betnr is not None
        row = await self.espo.get(ENTITY, action.espo_id)
        current = _as_int(row.get("betnr"))
        if current == action.betnr:
            return  # written by an interrupted run
        if current is not None:
            raise _LinkChanged(action.espo_id)
        data: dict[str, Any] = {"betnr": action.betnr}
        status = SyncStatus.parse(row.get("syncStatus"))
        if status in (SyncStatus.PERMANENTLY_FAILED, SyncStatus.CONFLICT, SyncStatus.DELETED_IN_ADVOWARE):
            data.update(
                {
                    "syncStatus": transition(status, SyncStatus.PENDING_SYNC).value,
                    "syncErrorMessage": None,
                    "syncRetryCount": 0,
                }
            )
        await self.espo.update(ENTITY, action.espo_id, data)

    async def _create_in_espocrm(self, action: Action, result: BackfillResult) -> str | None:
        """Advoware-only record -> new EspoCRM record carrying its betnr (so a rerun finds the
        pair by betnr and never creates it twice), then one engine sync for the snapshot."""
        from services.beteiligte import mapper

        assert action.betnr is not None
        existing = [
            r
            async for r in self.espo.iterate(
                ENTITY, where=[{"type": "equals", "attribute": "betnr", "value": action.betnr}], select="id"
            )
        ]
        if existing:
            rid = str(existing[0]["id"])
        else:
            advo = await self.advo.get_beteiligter(action.betnr)
            content = mapper.from_advo(advo)
            data = mapper.to_espo_patch(content, mapper.CANONICAL_FIELDS)
            data.update({"betnr": action.betnr, "syncStatus": SyncStatus.PENDING_SYNC.value})
            created = await self.espo.create(ENTITY, data, skip_duplicate_check=True)
            rid = str(created["id"])
            result.created_in_espocrm.append({"id": rid, "betnr": action.betnr})
        outcome = await self.engine.sync_record(rid, Trigger.SWEEP)
        if outcome.result in (Result.FAILED, Result.PERMANENTLY_FAILED):
            self._failure(action, result, outcome.reason or outcome.result.value, transient=True)
            return None
        self._consecutive_failures = 0
        return f"create_espo:{rid}"

    # ------------------------------------------------------------------ lock and run state
    async def _acquire_lock(self) -> None:
        token = secrets.token_hex(8)
        value = json.dumps(
            {
                "token": token,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "since": self.now().isoformat(),
            }
        )
        if await self.redis.set(BACKFILL_RUNNING, value, nx=True, ex=LOCK_TTL_SECONDS):
            self._lock_token = token
            return
        holder = await lock_holder(self.redis)
        if holder and _holder_is_dead(holder):
            log.warning("taking over the backfill lock of a dead process (pid %s)", holder.get("pid"))
            await self.redis.set(BACKFILL_RUNNING, value, ex=LOCK_TTL_SECONDS)
            self._lock_token = token
            return
        ttl = await self.redis.ttl(BACKFILL_RUNNING)
        raise BackfillBusy(
            f"a backfill is running (pid {holder.get('pid') if holder else '?'} on "
            f"{holder.get('host') if holder else '?'}); its lock expires in {ttl} s unless renewed"
        )

    async def _keep_lock(self) -> None:
        while True:
            await asyncio.sleep(LOCK_TTL_SECONDS / 4)
            holder = await lock_holder(self.redis)
            if holder and holder.get("token") == self._lock_token:
                await self.redis.expire(BACKFILL_RUNNING, LOCK_TTL_SECONDS)

    async def _release_lock(self) -> None:
        holder = await lock_holder(self.redis)
        if holder and holder.get("token") == self._lock_token:
            await self.redis.delete(BACKFILL_RUNNING)
        self._lock_token = None

    async def _open_run(self, restart: bool) -> tuple[str, bool]:
        state = await run_state(self.redis)
        if state and not restart and state.get("status") in ("running", "interrupted"):
            return str(state["run_id"]), True
        run_id = self.now().strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)
        return run_id, False

    async def _save_state(
        self,
        run_id: str,
        status: str,
        plan: BackfillPlan,
        result: BackfillResult | None = None,
        reason: str | None = None,
    ) -> None:
        state = await run_state(self.redis) or {}
        if state.get("run_id") != run_id:
            state = {"run_id": run_id, "started_at": self.now().isoformat()}
        state.update(
            {
                "status": status,
                "updated_at": self.now().isoformat(),
                "counts": plan.counts(),
                "done": int(await self.redis.hlen(checkpoint_key(run_id))),
            }
        )
        if result is not None:
            state["outcomes"] = dict(result.outcomes)
            state["failures"] = len(result.failures)
        if reason:
            state["reason"] = reason
        await self.redis.set(RUN_STATE, json.dumps(state, sort_keys=True))


class _LinkChanged(ApiError):
    def __init__(self, record_id: str) -> None:
        super().__init__(
            "the EspoCRM record got another betnr since it was read", system="espocrm", record_id=record_id
        )


def checkpoint_key(run_id: str) -> str:
    return key("backfill", run_id, "done")


async def run_state(redis: Redis) -> dict[str, Any] | None:
    raw = await redis.get(RUN_STATE)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


async def lock_holder(redis: Redis) -> dict[str, Any] | None:
    raw = await redis.get(BACKFILL_RUNNING)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return {"token": raw}
    return value if isinstance(value, dict) else None


def _holder_is_dead(holder: Mapping[str, Any]) -> bool:
    """Only provable on the same host: its pid no longer exists."""
    if holder.get("host") != socket.gethostname():
        return False
    try:
        pid = int(holder.get("pid") or 0)
    except (TypeError, ValueError):
        return False
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _park_message(amb: Ambiguity) -> str:
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
