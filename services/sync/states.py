"""The sync states of a CBeteiligte record and the only transitions allowed between them.

`syncStatus` in EspoCRM mirrors these values. Every status write goes through
`transition()`, so an illegal move (a bug) raises instead of silently corrupting what
staff see in the CRM.
"""

from __future__ import annotations

from enum import StrEnum


class SyncStatus(StrEnum):
    PENDING_SYNC = "pending_sync"  # new or requeued: needs a first/next sync
    SYNCING = "syncing"  # a worker holds the record's lock
    CLEAN = "clean"  # both systems agree
    DIRTY = "dirty"  # a change is known and not yet synced
    FAILED = "failed"  # last attempt failed transiently; the sweep retries with back-off
    CONFLICT = "conflict"  # held for a person (reserved; automatic resolution goes to clean)
    DELETED_IN_ADVOWARE = "deleted_in_advoware"  # betnr no longer exists; CRM record kept
    PERMANENTLY_FAILED = "permanently_failed"  # gave up (attempts exhausted or invalid data)
    EXCLUDED = "excluded"  # a person excluded the record from sync; set back to pending_sync to re-include

    @classmethod
    def parse(cls, raw: str | None) -> SyncStatus:
        """EspoCRM stores '' / null for a record nobody has synced yet: that is pending."""
        if not raw:
            return cls.PENDING_SYNC
        return cls(raw)


S = SyncStatus

# status -> the statuses it may move to. `syncing` is entered from every state a sync may
# start in; leaving `syncing` records the outcome. `syncing -> syncing` is the recovery of a
# lock whose holder died (the EspoCRM mirror still says syncing).
ALLOWED_TRANSITIONS: dict[SyncStatus, frozenset[SyncStatus]] = {
    S.PENDING_SYNC: frozenset({S.SYNCING, S.DIRTY}),
    S.DIRTY: frozenset({S.SYNCING, S.PENDING_SYNC}),
    S.CLEAN: frozenset({S.SYNCING, S.DIRTY, S.PENDING_SYNC}),
    S.FAILED: frozenset({S.SYNCING, S.PENDING_SYNC, S.DIRTY}),
    S.CONFLICT: frozenset({S.SYNCING, S.CLEAN, S.PENDING_SYNC}),
    # `syncing -> pending_sync`: a system became unavailable mid-sync; the record waits for it
    # (services/sync/breaker.py) without an attempt counted.
    S.SYNCING: frozenset(
        {
            S.SYNCING,
            S.CLEAN,
            S.FAILED,
            S.PERMANENTLY_FAILED,
            S.DELETED_IN_ADVOWARE,
            S.CONFLICT,
            S.PENDING_SYNC,
        }
    ),
    # Terminal until a person (or `retry-failed`) requeues the record.
    S.DELETED_IN_ADVOWARE: frozenset({S.PENDING_SYNC, S.SYNCING}),
    S.PERMANENTLY_FAILED: frozenset({S.PENDING_SYNC}),
    # Set only by a person in EspoCRM; the way out is theirs too (re-include: syncStatus ->
    # pending_sync). The service never syncs an excluded record.
    S.EXCLUDED: frozenset({S.PENDING_SYNC}),
}

# Statuses only a person sets (in EspoCRM); no transition of the service leads there.
SET_BY_PERSON: frozenset[SyncStatus] = frozenset({S.EXCLUDED})

# A person's moves (the operator's console, services/ops/console.py) besides the service's own:
# exclude a record from any state but `syncing` (a worker holds it; wait for its outcome).
# Re-including is the service's own `excluded -> pending_sync`.
PERSON_TRANSITIONS: dict[SyncStatus, frozenset[SyncStatus]] = {
    status: frozenset({S.EXCLUDED}) for status in SyncStatus if status not in (S.SYNCING, S.EXCLUDED)
}


class IllegalTransition(RuntimeError):
    """A status change that the state machine forbids: always a bug in the caller."""


def can_transition(current: SyncStatus, target: SyncStatus, *, by_person: bool = False) -> bool:
    if by_person and target in PERSON_TRANSITIONS.get(current, frozenset()):
        return True
    return target in ALLOWED_TRANSITIONS[current]


def transition(
    current: SyncStatus | str | None, target: SyncStatus, *, by_person: bool = False
) -> SyncStatus:
    """Return `target` if moving there from `current` is allowed (`by_person`: also a person's
    moves, PERSON_TRANSITIONS), else raise IllegalTransition."""
    cur = current if isinstance(current, SyncStatus) else SyncStatus.parse(current)
    if not can_transition(cur, target, by_person=by_person):
        raise IllegalTransition(f"syncStatus {cur.value} -> {target.value} is not allowed")
    return target
