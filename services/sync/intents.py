"""Create intents: the guard against a second Advoware record after a crash or a lost answer.

Before POSTing a new Beteiligter the engine stores `espocrm id -> {started_at, sent}` (`sent`:
the canonical content POSTed); the moment Advoware answers it adds the new `betnr` and what the
answer holds (`answer`); after `betnr` is written back to EspoCRM the intent is dropped.

Every try of a create runs the identity check against a fresh Advoware read, with or without an
intent (services/sync/linking.py): a retry finds the party an earlier try created - by its betnr,
or, when the answer was lost, among the parties created since `started_at` that match the
record's identity - even after staff completed it in Advoware, and links it. The intent also
gives that link its baseline: what was sent (and what Advoware answered), never Advoware's
current content, so edits made on either side since the POST are synced as edits
(services/sync/create.py).

While a record's intent lives, its create's outcome is not settled: a POST whose answer was lost
may still be carried out by Advoware later (a slow server finishes a request the client gave up
on). So each lookup key of what was sent names the record (`keys.unresolved_create`), and
another record's create of the same identity waits (`IntentStore.unresolved_other`, under the
claims, services/sync/create.py) instead of finding nothing and POSTing a second party. The
marks go with the intent (`delete`: resolved, held, unlinked, forgotten); a mark whose record
has no intent any more (expired, an older version's delete) is dropped when found.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.store import keys

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from redis.asyncio import Redis

# A party counts as created by the intent's POST if Advoware created it at most this long before
# the intent was written (the two clocks differ a little).
INTENT_LOOKBACK = timedelta(minutes=5)


@dataclass
class CreateIntent:
    espo_id: str
    started_at: str  # UTC ISO, when the POST was about to be sent
    betnr: int | None = None
    content_hash: str | None = None  # written by earlier versions; kept so their intents load
    sent: dict[str, Any] | None = None  # the canonical content POSTed (mapper.from_espo)
    answer: dict[str, Any] | None = None  # the canonical content Advoware answered (mapper.from_advo)

    def created_since_local(self, tz: ZoneInfo) -> str:
        """Advoware local time (no offset) from which a party may be this intent's POST."""
        from services.advoware.timezone import query_since_local

        return query_since_local(datetime.fromisoformat(self.started_at), tz, INTENT_LOOKBACK)


@dataclass(frozen=True)
class IntentStore:
    redis: Redis

    async def get(self, espo_id: str) -> CreateIntent | None:
        """The record's intent. An unreadable one raises: taking it for missing would let a
        retry POST again and create the party twice."""
        raw = await self.redis.get(keys.create_intent(espo_id))
        if not raw:
            return None
        return CreateIntent(**json.loads(raw))

    async def put(self, intent: CreateIntent) -> None:
        ttl = keys.CREATE_INTENT_TTL_SECONDS
        # Marked before the intent is stored: an intent is never without its marks.
        for lookup in _sent_keys(intent.sent):
            await self.redis.sadd(keys.unresolved_create(lookup), intent.espo_id)
            await self.redis.expire(keys.unresolved_create(lookup), ttl)
        await self.redis.set(keys.create_intent(intent.espo_id), json.dumps(asdict(intent)), ex=ttl)

    async def delete(self, espo_id: str) -> bool:
        """Drop the intent and its marks; True if there was one."""
        raw = await self.redis.get(keys.create_intent(espo_id))
        sent = None
        if raw:
            try:
                sent = json.loads(raw).get("sent")
            except (TypeError, ValueError, AttributeError):
                sent = None  # unreadable: its marks are dropped as stale when found
        for lookup in _sent_keys(sent):
            await self.redis.srem(keys.unresolved_create(lookup), espo_id)
        return bool(await self.redis.delete(keys.create_intent(espo_id)))

    async def unresolved_other(self, espo_id: str, lookup_keys: Iterable[str]) -> str | None:
        """Another record whose create of an identity sharing one of `lookup_keys` is not
        settled (it has an intent), or None. Marks of records without an intent are dropped."""
        for lookup in sorted(set(lookup_keys)):
            name = keys.unresolved_create(lookup)
            for member in sorted(await self.redis.smembers(name)):
                other = member if isinstance(member, str) else member.decode()
                if other == espo_id:
                    continue
                if await self.redis.exists(keys.create_intent(other)):
                    return other
                await self.redis.srem(name, other)
        return None


def _sent_keys(sent: Mapping[str, Any] | None) -> list[str]:
    """The identity lookup keys of what a create sent (the keys it claimed, create.claim_keys)."""
    from services.beteiligte.identity import identity_of_content, lookup_keys

    return lookup_keys(identity_of_content(sent)) if sent else []
