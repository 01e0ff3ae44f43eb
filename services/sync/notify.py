"""Telling people: notices to ESPOCRM_NOTIFY_USER_ID that always arrive.

Channel (shared/docs/espocrm-api.md §4): `POST /Notification` is 403 for API users, so a notice
is a stream post with an @mention of the notify user, which EspoCRM turns into a
`MentionInPost` notification:

| the notice is about            | posted to                                                   |
|--------------------------------|-------------------------------------------------------------|
| an existing CBeteiligte record | the record's stream (`parentType` CBeteiligte)              |
| a record that no longer exists | the notify user's own stream (`parentType` User), the text  |
| (EspoCRM delete), or no record | names the record                                            |
| (an alert)                     |                                                             |

The @mention needs the user's `userName`: `ESPOCRM_NOTIFY_USER_NAME` if set (an override),
else looked up with `GET /User/{id}` and cached in Redis for a day. A notice that cannot be
posted is kept in the outbox (Redis) and posted again with the record's next sync (and by
the per-minute ops watch); `status` and `/vmh/health` show how many wait. Texts are German
(for the firm's staff) and go into the CRM only; logs carry record ids and reasons, never
names, values or the text.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from services.errors import ApiError, NotFoundError
from services.store import keys
from services.store.counters import Metrics, Stat
from services.sync.model import ENTITY
from services.sync.stores import RECENT_LIMIT

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

OUTBOX = keys.NOTIFY_OUTBOX  # hash: notice id -> JSON
USER_NAME_TTL_SECONDS = 24 * 3600


user_name_key = keys.notify_user_name

# KEYS: the claims, then the outbox and the stats hash; ARGV: the claims' TTL, the notice id and
# JSON, then counter name / amount pairs. All or nothing: a claim already set ends it.
_CLAIM_AND_QUEUE = """
local claims = #KEYS - 2
for i = 1, claims do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
for i = 1, claims do
  redis.call('SET', KEYS[i], '1', 'EX', ARGV[1])
end
redis.call('HSET', KEYS[claims + 1], ARGV[2], ARGV[3])
for j = 4, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[claims + 2], ARGV[j], ARGV[j + 1])
end
return 1
"""


class NoticeClient(Protocol):
    async def get(self, entity: str, id: str) -> dict[str, Any]: ...
    async def create(self, entity: str, data: Mapping[str, Any]) -> dict[str, Any]: ...


class ChannelError(Exception):
    """The notice channel cannot work as configured (the message names what is missing)."""


class Notifier:
    def __init__(
        self,
        espo: NoticeClient,
        redis: Redis,
        user_id: str | None,
        user_name: str | None = None,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self._espo = espo
        self._redis = redis
        self._user_id = user_id
        self._user_name = user_name
        # Without the runtime's (tests of the notices alone) the counts still reach vmh:stats.
        self._metrics = metrics or Metrics(redis)

    async def notify(self, record_id: str | None, message: str) -> bool:
        """Post a notice; on failure keep it in the outbox. Never raises for the channel."""
        await self._metrics.count(Stat.NOTIFICATIONS)
        await self._remember(record_id, message)
        return await self._deliver(self._notice(record_id, message))

    @staticmethod
    def _notice(record_id: str | None, message: str) -> dict[str, Any]:
        return {
            "id": uuid.uuid4().hex,
            "record_id": record_id,
            "message": message,
            "at": datetime.now(UTC).isoformat(),
            "attempts": 0,
        }

    async def notify_once(
        self,
        record_id: str,
        message: str,
        *,
        claims: Sequence[str],
        ttl_seconds: int,
        counters: Mapping[Stat, int],
    ) -> bool:
        """Post a notice at most once per claim: the `claims` keys (none of them set yet; they
        live `ttl_seconds`), the notice in the outbox and `counters` (vmh:stats) are written in
        one atomic step; False if a claim was taken already (told before: nothing counted,
        nothing posted). A worker that dies after that step leaves the notice in the outbox, and
        the next `retry_pending` posts it."""
        notice = self._notice(record_id, message)
        args = [str(ttl_seconds), str(notice["id"]), json.dumps(notice, ensure_ascii=False)]
        for name, amount in {Stat.NOTIFICATIONS: 1, **counters}.items():
            args += [name, str(amount)]
        keys_ = [*claims, OUTBOX, keys.STATS]
        if not await self._redis.eval(_CLAIM_AND_QUEUE, len(keys_), *keys_, *args):
            return False
        await self._remember(record_id, message)
        await self._deliver(notice)
        return True

    async def retry_pending(self, record_id: str | None = None) -> int:
        """Post the notices waiting in the outbox (those about `record_id`, or all); returns
        how many were delivered now."""
        raw = await self._redis.hgetall(OUTBOX)
        delivered = 0
        for notice_id, body in sorted(raw.items(), key=lambda kv: kv[1]):
            try:
                notice = json.loads(body)
            except ValueError:
                await self._redis.hdel(OUTBOX, notice_id)
                continue
            if record_id is not None and notice.get("record_id") != record_id:
                continue
            if await self._deliver(notice):
                delivered += 1
        return delivered

    async def user_name(self) -> str:
        """The notify user's userName: the override, the cached lookup, or `GET /User/{id}`."""
        if self._user_name:
            return self._user_name
        if not self._user_id:
            raise ChannelError("ESPOCRM_NOTIFY_USER_ID is not set: nobody can be notified")
        cached = await self._redis.get(user_name_key(self._user_id))
        if cached:
            return str(cached)
        try:
            user = await self._espo.get("User", self._user_id)
        except NotFoundError:
            raise ChannelError(
                f"ESPOCRM_NOTIFY_USER_ID {self._user_id} is not an EspoCRM user (404)"
            ) from None
        except ApiError as exc:
            if exc.status_code == 403:
                raise ChannelError(
                    "the API user may not read Users (role: User scope read), "
                    "or set ESPOCRM_NOTIFY_USER_NAME to the notify user's user name"
                ) from None
            raise
        name = user.get("userName")
        if not name:
            raise ChannelError(f"EspoCRM user {self._user_id} has no userName")
        if user.get("isActive") is False:
            raise ChannelError(f"EspoCRM user {self._user_id} is not active: a mention would not reach them")
        await self._redis.set(user_name_key(self._user_id), str(name), ex=USER_NAME_TTL_SECONDS)
        return str(name)

    async def check_channel(self) -> list[str]:
        """Problems that keep notices from arriving, as sentences naming what is missing."""
        try:
            await self.user_name()
        except ChannelError as exc:
            return [str(exc)]
        except ApiError as exc:
            return [f"EspoCRM did not answer the notify user lookup: {exc}"]
        return []

    # ------------------------------------------------------------------ internals
    async def _deliver(self, notice: dict[str, Any]) -> bool:
        notice_id, record_id = str(notice["id"]), notice.get("record_id")
        try:
            name = await self.user_name()
            await self._post(record_id, f"@{name} {notice['message']}")
        except (ChannelError, ApiError) as exc:
            notice["attempts"] = int(notice.get("attempts", 0)) + 1
            notice["error"] = str(exc)[:300]
            await self._redis.hset(OUTBOX, notice_id, json.dumps(notice, ensure_ascii=False))
            await self._metrics.count(Stat.NOTIFICATIONS_FAILED)
            self._metrics.notice("failed")
            log.warning(
                "notice about record %s not delivered (attempt %d, kept for retry): %s",
                record_id,
                notice["attempts"],
                type(exc).__name__,
            )
            return False
        await self._redis.hdel(OUTBOX, notice_id)
        self._metrics.notice("sent")
        log.info("notified the notify user about record %s", record_id)
        return True

    async def _post(self, record_id: str | None, post: str) -> None:
        if record_id:
            try:
                await self._espo.create(
                    "Note", {"type": "Post", "parentType": ENTITY, "parentId": record_id, "post": post}
                )
                return
            except NotFoundError:
                pass  # the record is gone (EspoCRM delete): tell the user on their own stream
        assert self._user_id is not None  # user_name() succeeded
        await self._espo.create(
            "Note", {"type": "Post", "parentType": "User", "parentId": self._user_id, "post": post}
        )

    async def _remember(self, record_id: str | None, message: str) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.lpush(
            keys.NOTIFICATIONS,
            json.dumps({"at": datetime.now(UTC).isoformat(), "id": record_id, "message": message}),
        )
        pipe.ltrim(keys.NOTIFICATIONS, 0, RECENT_LIMIT - 1)
        await pipe.execute()


async def outbox_waiting(redis: Redis) -> int:
    """How many notices wait in the outbox for another attempt."""
    return int(await redis.hlen(OUTBOX))


async def outbox_summary(redis: Redis) -> dict[str, Any]:
    """How many notices wait for delivery and since when (no texts: they hold personal data)."""
    raw = await redis.hvals(OUTBOX)
    notices: list[dict[str, Any]] = []
    for body in raw:
        try:
            notices.append(json.loads(body))
        except ValueError:
            continue
    oldest = min((str(n.get("at")) for n in notices), default=None)
    newest = max(notices, key=lambda n: str(n.get("at"))) if notices else {}
    return {
        "waiting": len(notices),
        "oldest": oldest,
        "records": sorted({str(n["record_id"]) for n in notices if n.get("record_id")})[:20],
        "last_error": newest.get("error"),
    }


# ---------------------------------------------------------------------- texts (German)


def display_name(content: Mapping[str, Any]) -> str | None:
    """A record's name as staff know it, from canonical content (a deleted record's snapshot)."""
    if content.get("company_name"):
        return str(content["company_name"])
    parts = [str(content[k]) for k in ("first_name", "last_name") if content.get(k)]
    return " ".join(parts) or None


def record_label(record_id: str, *, name: str | None = None, betnr: int | None = None) -> str:
    parts = [f"EspoCRM-ID {record_id}"]
    if betnr is not None:
        parts.append(f"Advoware-Nr. {betnr}")
    inner = ", ".join(parts)
    return f"„{name}“ ({inner})" if name else f"Beteiligter ({inner})"


def field_label(field: str) -> str:
    from services.beteiligte.fieldmap import FIELDS

    spec = FIELDS.get(field)
    return spec.description if spec is not None and spec.description else field


def conflict_text(label: str, conflicts: Sequence[Any]) -> str:
    """`conflicts`: FieldConflict-like (field, espo_value, advo_value)."""
    from services.beteiligte.mapper import describe_value

    lines = [
        f"- {field_label(c.field)}: EspoCRM „{describe_value(c.field, c.espo_value)}“ übernommen, "
        f"Advoware-Wert „{describe_value(c.field, c.advo_value)}“ überschrieben"
        for c in conflicts
    ]
    return (
        f"Konflikt beim Abgleich von {label}: beide Seiten wurden geändert, EspoCRM hat Vorrang.\n"
        + "\n".join(lines)
    )


def deleted_in_espocrm_text(label: str, betnr: int) -> str:
    return (
        f"{label} wurde in EspoCRM gelöscht. Der Advoware-Beteiligte Nr. {betnr} bleibt unverändert "
        "bestehen; die Verknüpfung wurde aufgehoben."
    )


def deleted_in_advoware_text(label: str, betnr: int) -> str:
    return (
        f"Der Advoware-Beteiligte Nr. {betnr} von {label} existiert nicht mehr. Der EspoCRM-Datensatz "
        "bleibt erhalten und wird nicht mehr abgeglichen, bis er neu verknüpft wird."
    )


def permanently_failed_text(label: str, attempts: int, reason: str) -> str:
    return (
        f"Der Abgleich von {label} mit Advoware ist endgültig fehlgeschlagen (nach {attempts} "
        f"Versuch(en)). Grund: {reason}. Bitte Daten prüfen und den Abgleich erneut anstoßen."
    )
