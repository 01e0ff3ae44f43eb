"""The EspoCRM writes of single backfill items (the engine does everything else):
hold an ambiguous record, release an earlier hold, write a matched betnr, create an
Advoware-only party in EspoCRM. Each transition goes through `states.transition`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.backfill.plan import PARK_PREFIX, Action
from services.errors import ApiError
from services.espocrm.fields import SYNC_ERROR_MESSAGE, SYNC_RETRY_COUNT, SYNC_STATUS
from services.sync.deps import Systems
from services.sync.linking import records_with_betnr
from services.sync.model import ENTITY, as_int
from services.sync.states import SyncStatus, can_transition, transition

if TYPE_CHECKING:
    from services.sync.engine import SyncEngine


class LinkChanged(ApiError):
    def __init__(self, record_id: str) -> None:
        super().__init__(
            "the EspoCRM record got another betnr since it was read", system="espocrm", record_id=record_id
        )


@dataclass(kw_only=True)
class ItemActions:
    systems: Systems
    engine: SyncEngine

    async def park(self, action: Action) -> str | None:
        """Hold an ambiguous EspoCRM record as `conflict` under its lock (the engine leaves it
        until a person links it or an operator runs `sync`)."""
        assert action.espo_id is not None
        async with self.engine.locks.holding_if_free(action.espo_id) as lease:
            if lease is None:
                return None  # being synced right now: the rerun holds it
            current = SyncStatus.parse((await self.systems.espo.get(ENTITY, action.espo_id)).get(SYNC_STATUS))
            # As a worker would: current -> (pending_sync ->) syncing -> conflict.
            via = (
                current
                if can_transition(current, SyncStatus.SYNCING)
                else transition(current, SyncStatus.PENDING_SYNC)
            )
            transition(transition(via, SyncStatus.SYNCING), SyncStatus.CONFLICT)
            await self.systems.espo.update(
                ENTITY,
                action.espo_id,
                {SYNC_STATUS: SyncStatus.CONFLICT.value, SYNC_ERROR_MESSAGE: action.detail},
            )
        return "park:held"

    async def unhold(self, action: Action) -> None:
        """A record held by an earlier backfill that is no longer ambiguous: release it."""
        assert action.espo_id is not None
        row = await self.systems.espo.get(ENTITY, action.espo_id)
        if row.get(SYNC_STATUS) == SyncStatus.CONFLICT and str(row.get(SYNC_ERROR_MESSAGE) or "").startswith(
            PARK_PREFIX
        ):
            transition(SyncStatus.CONFLICT, SyncStatus.PENDING_SYNC)
            await self.systems.espo.update(
                ENTITY,
                action.espo_id,
                {SYNC_STATUS: SyncStatus.PENDING_SYNC.value, SYNC_ERROR_MESSAGE: None},
            )

    async def link(self, action: Action) -> None:
        """Write the Advoware betnr into the EspoCRM record; the engine then reconciles content."""
        assert action.espo_id is not None and action.betnr is not None
        row = await self.systems.espo.get(ENTITY, action.espo_id)
        current = as_int(row.get("betnr"))
        if current == action.betnr:
            return  # written by an interrupted run
        if current is not None:
            raise LinkChanged(action.espo_id)
        data: dict[str, Any] = {"betnr": action.betnr}
        status = SyncStatus.parse(row.get(SYNC_STATUS))
        if status in (SyncStatus.PERMANENTLY_FAILED, SyncStatus.CONFLICT, SyncStatus.DELETED_IN_ADVOWARE):
            data.update(
                {
                    SYNC_STATUS: transition(status, SyncStatus.PENDING_SYNC).value,
                    SYNC_ERROR_MESSAGE: None,
                    SYNC_RETRY_COUNT: 0,
                }
            )
        await self.systems.espo.update(ENTITY, action.espo_id, data)

    async def create_in_espocrm(self, action: Action) -> tuple[str, bool]:
        """Advoware-only record -> new EspoCRM record carrying its betnr (so a rerun finds the
        pair by betnr and never creates it twice). Returns (EspoCRM id, created now)."""
        from services.beteiligte import mapper

        assert action.betnr is not None
        existing = await records_with_betnr(self.systems.espo, action.betnr)
        if existing:
            return existing[0], False
        advo = await self.systems.advo.get_beteiligter(action.betnr)
        content = mapper.from_advo(advo)
        data = mapper.to_espo_patch(content, mapper.CANONICAL_FIELDS)
        data.update({"betnr": action.betnr, SYNC_STATUS: SyncStatus.PENDING_SYNC.value})
        created = await self.systems.espo.create(ENTITY, data, skip_duplicate_check=True)
        return str(created["id"]), True
