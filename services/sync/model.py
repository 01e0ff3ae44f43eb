"""The vocabulary of one record's sync: why it runs (`Trigger`), how it ended (`Result`,
`Outcome`), what a run carries along (`RecordContext`), its tunables and options (`SyncConfig`,
`SyncOptions`) and which states wait for a person (`PARKED`, `stays_parked`). No I/O here; what
the parts are given is services/sync/deps.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from services.espocrm.fields import SYNC_STATUS
from services.sync.decide import MergePlan
from services.sync.states import SyncStatus

ENTITY = "CBeteiligte"


class Trigger(StrEnum):
    WEBHOOK_CREATE = "create"
    WEBHOOK_UPDATE = "update"
    SWEEP = "sync_check"  # pending/dirty/failed/stale lock, or an Advoware-side change
    DAILY_CHECK = "daily_check"  # clean record not verified for 24 h
    MANUAL = "manual"  # ops `sync <id>`
    RETRY_NOW = "retry_now"  # breaker released it, or an operator retries: no back-off
    # The sweep's EspoCRM poll found a person's edit (not our own write) of a record parked as
    # permanently_failed / deleted_in_advoware: the safety net of the webhook, so it requeues too.
    ESPO_EDIT = "espocrm_edit"


class Result(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED_IN_ADVOWARE = "deleted_in_advoware"
    FAILED = "failed"
    PERMANENTLY_FAILED = "permanently_failed"
    LOCKED = "locked"  # another worker holds the record; it will run once more for us
    SKIPPED = "skipped"  # record gone from EspoCRM, parked for a person, or back-off not due
    WAITING = "waiting"  # a system's circuit breaker is open: released when it closes
    UNLINKED = "unlinked"
    HELD = "held"  # `conflict`: a link needs a person (services/sync/linking.py)


@dataclass
class Outcome:
    record_id: str
    result: Result
    plan: MergePlan | None = None
    betnr: int | None = None
    reason: str | None = None
    writes: dict[str, int] = field(default_factory=lambda: {"espo": 0, "advo": 0})


@dataclass(frozen=True)
class SyncConfig:
    """The engine's tunables, explicit. Built from `Settings` (the only place their defaults
    are written) by the composition root, services/runtime.py."""

    max_attempts: int  # SYNC_MAX_ATTEMPTS: attempts before permanently_failed
    retry_base: timedelta  # SYNC_RETRY_BASE_SECONDS: back-off of failed records
    advoware_reread_after: timedelta  # SYNC_ADVOWARE_REREAD_SECONDS: re-read before a PUT


@dataclass(frozen=True)
class SyncOptions:
    """Per-call choices of a sync. `defer_creates`: while a backfill holds its lock, a record
    without betnr waits (the backfill may be about to link it); the backfill itself passes
    False, since it is the one holding that lock."""

    defer_creates: bool = True


@dataclass
class RecordContext:
    """One run of one record: the EspoCRM record as read, its status, the writes made."""

    record_id: str
    espo: dict[str, Any]
    status: SyncStatus
    options: SyncOptions = SyncOptions()
    trigger: Trigger = Trigger.SWEEP
    espo_writes: int = 0
    advo_writes: int = 0

    @property
    def writes(self) -> dict[str, int]:
        return {"espo": self.espo_writes, "advo": self.advo_writes}

    @property
    def held_before(self) -> bool:
        """The record was held as `conflict` when this run read it (before admission)."""
        return self.espo.get(SYNC_STATUS) == SyncStatus.CONFLICT.value

    @property
    def deleted_before(self) -> bool:
        return self.espo.get(SYNC_STATUS) == SyncStatus.DELETED_IN_ADVOWARE.value


PARKED = frozenset({SyncStatus.PERMANENTLY_FAILED, SyncStatus.DELETED_IN_ADVOWARE, SyncStatus.CONFLICT})


def stays_parked(status: SyncStatus, espo: Mapping[str, Any], trigger: Trigger) -> bool:
    """Parked for a person. A person's edit (webhook, or the sweep's EspoCRM poll when the webhook
    never came: `ESPO_EDIT`) or an operator's `sync` / `relink` requeues it:
    `deleted_in_advoware` with a new betnr syncs with that party (the same betnr still 404 is
    left alone without a second note), with betnr cleared goes through the identity check; a
    `conflict` held by the identity check or the backfill (no betnr) only when a person linked it
    (set betnr) or an operator's `sync` says "create it anyway": an unrelated edit would create
    the duplicate. A `conflict` with a betnr (a copied betnr) is checked again on every trigger."""
    linked = espo.get("betnr") not in (None, "")
    if status is SyncStatus.CONFLICT:
        return not (trigger is Trigger.MANUAL or linked)
    return trigger not in (Trigger.WEBHOOK_UPDATE, Trigger.ESPO_EDIT, Trigger.MANUAL)


def as_int(value: Any) -> int | None:
    """A betnr as an int; None for empty, unparseable or boolean values."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
