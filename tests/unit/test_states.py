from __future__ import annotations

import pytest

from services.sync.states import (
    ALLOWED_TRANSITIONS,
    SET_BY_PERSON,
    IllegalTransition,
    SyncStatus,
    transition,
)


def test_every_status_has_a_row() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(SyncStatus)


def test_every_status_is_reachable_and_every_sync_can_end() -> None:
    reachable = {t for targets in ALLOWED_TRANSITIONS.values() for t in targets}
    assert reachable | SET_BY_PERSON == set(SyncStatus)
    assert {SyncStatus.CLEAN, SyncStatus.FAILED, SyncStatus.PERMANENTLY_FAILED} <= ALLOWED_TRANSITIONS[
        SyncStatus.SYNCING
    ]


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (SyncStatus.PERMANENTLY_FAILED, SyncStatus.SYNCING),  # needs a person's requeue first
        (SyncStatus.PENDING_SYNC, SyncStatus.CLEAN),  # clean only as the outcome of a sync
        (SyncStatus.CLEAN, SyncStatus.FAILED),
        (SyncStatus.DIRTY, SyncStatus.DELETED_IN_ADVOWARE),
    ],
)
def test_illegal_transitions_raise(current: SyncStatus, target: SyncStatus) -> None:
    with pytest.raises(IllegalTransition):
        transition(current, target)


def test_blank_status_is_pending() -> None:
    assert transition("", SyncStatus.SYNCING) is SyncStatus.SYNCING
    assert transition(None, SyncStatus.SYNCING) is SyncStatus.SYNCING


def test_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError):
        transition("bogus", SyncStatus.SYNCING)


def test_a_person_may_exclude_from_any_state_but_syncing() -> None:
    from services.sync.states import PERSON_TRANSITIONS

    for status in SyncStatus:
        if status in (SyncStatus.SYNCING, SyncStatus.EXCLUDED):
            with pytest.raises(IllegalTransition):
                transition(status, SyncStatus.EXCLUDED, by_person=True)
        else:
            assert transition(status, SyncStatus.EXCLUDED, by_person=True) is SyncStatus.EXCLUDED
            with pytest.raises(IllegalTransition):
                transition(status, SyncStatus.EXCLUDED)  # never the service's own move
    # A person's moves lead only to excluded; the way back is the service's own requeue.
    assert {t for targets in PERSON_TRANSITIONS.values() for t in targets} == {SyncStatus.EXCLUDED}
    assert transition(SyncStatus.EXCLUDED, SyncStatus.PENDING_SYNC) is SyncStatus.PENDING_SYNC
