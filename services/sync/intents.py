"""Create intents: the guard against a second Advoware record after a crash.

Before POSTing a new Beteiligter the engine stores `espocrm id -> {started_at, content_hash}`;
the moment Advoware answers it adds the new `betnr`; after `betnr` is written back to
EspoCRM the intent is dropped. A retry that finds an intent with a `betnr` only finishes
the write-back; one without a `betnr` (crash or timeout during the POST) first looks in
Advoware for a record it may have created (the content it POSTed - the EspoCRM record may
have been edited since -, changed since `started_at`) before creating again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from services.store import keys

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass
class CreateIntent:
    espo_id: str
    started_at: str  # UTC ISO, when the POST was about to be sent
    betnr: int | None = None
    content_hash: str | None = None  # mapper.content_hash of the content POSTed


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
        await self.redis.set(
            keys.create_intent(intent.espo_id), json.dumps(asdict(intent)), ex=keys.CREATE_INTENT_TTL_SECONDS
        )

    async def delete(self, espo_id: str) -> None:
        await self.redis.delete(keys.create_intent(espo_id))
