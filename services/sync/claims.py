"""Claims: creates and links serialised per identity and per betnr, not only per record.

The record lease (services/sync/lock.py) keeps two runs of one record apart. Two *different*
EspoCRM records of one party (a CSV import, a double entry, two deliveries at once) are kept
apart here: before its identity check a create claims every lookup key of its identity
(`keys.identity_claim`, the keys `identity.lookup_keys` gives; two identities that can match
always share one), and before it links or writes a betnr it claims that betnr
(`keys.betnr_claim`). It holds them through the POST and the betnr write-back, so the second
record's identity check runs after the first record's party exists and its betnr is in EspoCRM:
it finds that party, sees it linked to the first record, and is held as a duplicate
(`conflict`, services/sync/linking.py).

- Each claim is one `Lease` (services/store/lease.py): renewed while held, released on exit
  even when the work raises, expiring on its own when the holder dies.
- Lock order: identity claims first, in sorted order, then betnr claims, in sorted order; a
  holder of a betnr claim never waits for an identity claim. So no two holders wait for each
  other, and a wait is bounded anyway (`wait_seconds`, then `ClaimBusy`).
- A claim lost while held (expired during a Redis outage or a stall, force-released) makes
  `check()` raise `ClaimLost` before the next write, whether or not the renewal has noticed yet
  (it asks Redis who holds each claim): a second record may be past its check by then.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.errors import TransientError
from services.store import keys
from services.store.lease import Lease

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

# How long a create waits for another record's create or link of the same party. A create is a
# few API calls; a create still holding the claim after this is slow or stuck.
CLAIM_WAIT_SECONDS = 30.0


class ClaimBusy(TransientError):
    """Another record's create or link of the same party held the claim for too long."""

    def __init__(self, name: str) -> None:
        super().__init__("another record of the same party is being created or linked", system="sync")
        self.name = name


class ClaimLost(TransientError):
    """A claim expired while held: stop before the next write (the retry checks again)."""

    def __init__(self) -> None:
        super().__init__("identity claim lost while the create ran", system="sync")


@dataclass
class HeldClaims:
    """The claims one create or link holds; more betnr claims can be added while held."""

    redis: Redis
    ttl_seconds: float
    wait_seconds: float
    leases: list[Lease] = field(default_factory=list)
    _renewals: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def take(self, name: str) -> None:
        if any(lease.name == name for lease in self.leases):
            return
        lease = Lease(self.redis, name, self.ttl_seconds)
        if not await lease.acquire(wait=self.wait_seconds):
            raise ClaimBusy(name)
        self.leases.append(lease)
        await self._renewals.enter_async_context(lease.renewing())

    async def add_betnr(self, betnr: int) -> None:
        """Claim `betnr` too (after the identity claims: the lock order above)."""
        await self.take(keys.betnr_claim(betnr))

    async def check(self) -> None:
        """Raise `ClaimLost` unless every claim is still ours (call right before a write): the
        renewal found one gone, or it expired since the last renewal (a stalled process or
        Redis; renewal runs only every third of the TTL) and another record may hold it now."""
        for lease in self.leases:
            if lease.lost or not await lease.owned():
                lease.lost = True
                raise ClaimLost

    async def release(self) -> None:
        try:
            await self._renewals.aclose()
        finally:
            for lease in reversed(self.leases):
                await lease.release()
            self.leases.clear()


@dataclass(frozen=True)
class Claims:
    """`ttl_seconds`: SYNC_LOCK_TTL_SECONDS, like the record lease (renewed while held)."""

    redis: Redis
    ttl_seconds: float
    wait_seconds: float = CLAIM_WAIT_SECONDS

    @contextlib.asynccontextmanager
    async def hold(
        self, lookup_keys: Iterable[str] = (), betnrs: Iterable[int] = ()
    ) -> AsyncIterator[HeldClaims]:
        """Claim the identity lookup keys, then the betnrs (each set in sorted order)."""
        held = HeldClaims(self.redis, self.ttl_seconds, self.wait_seconds)
        try:
            for lookup in sorted(set(lookup_keys)):
                await held.take(keys.identity_claim(lookup))
            for betnr in sorted(set(betnrs)):
                await held.add_betnr(betnr)
            yield held
        finally:
            await held.release()
