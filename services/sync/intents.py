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


class IntentStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    @staticmethod
    def intent_key(espo_id: str) -> str:
        return keys.create_intent(espo_id)

    async def get(self, espo_id: str) -> CreateIntent | None:
        raw = await self._redis.get(self.intent_key(espo_id))
        if not raw:
            return None
        return CreateIntent(**json.loads(raw))

    async def put(self, intent: CreateIntent) -> None:
        await self._redis.set(
            self.intent_key(intent.espo_id), json.dumps(asdict(intent)), ex=keys.CREATE_INTENT_TTL_SECONDS
        )

    async def delete(self, espo_id: str) -> None:
        await self._redis.delete(self.intent_key(espo_id))
