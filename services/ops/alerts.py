"""Alerts: one notice per condition when it starts to matter, and one when it is over.

A condition (services/conditions.py `AlertCondition`: `advoware_unreachable`,
`espocrm_credentials`, `sweep_overdue`, `record_failed` of a record, ...) is held in Redis by its
name while it lasts:

| call                              | condition state          | effect                                  |
|-----------------------------------|--------------------------|-----------------------------------------|
| `raise_condition(cond, detail)`   | unknown                  | remembered with its start time          |
| `raise_condition(cond, detail)`   | known, shorter than `after` | nothing                              |
| `raise_condition(cond, detail)`   | known, `after` reached, not alerted | one alert notice (HSETNX: once across processes) |
| `raise_condition(...)` again      | alerted                  | nothing (no storm)                      |
| `clear_condition(cond)`           | alerted                  | forgotten; one recovery notice          |
| `clear_condition(cond)`           | not alerted / unknown    | forgotten silently                      |

Whoever detects a condition calls these (the per-minute ops watch from the health checks, the
sync outcome for a record's `record_failed`); `after` defaults to `ALERT_AFTER_SECONDS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from services.conditions import AlertCondition, ConditionKind
from services.store import keys
from services.store.timestamps import utc_now

if TYPE_CHECKING:
    from redis.asyncio import Redis


class Notice(Protocol):
    async def notify(self, record_id: str | None, message: str) -> bool: ...


TEXTS: dict[ConditionKind, tuple[str, str]] = {
    # condition kind -> (alert text, recovery text); {detail} / {since} filled in
    ConditionKind.ADVOWARE_UNREACHABLE: (
        "Advoware ist seit {since} nicht erreichbar ({detail}). Der Abgleich wartet und holt alles nach.",
        "Advoware ist wieder erreichbar; der Abgleich läuft wieder.",
    ),
    ConditionKind.ADVOWARE_CREDENTIALS: (
        "Advoware lehnt seit {since} die Zugangsdaten ab ({detail}). Bitte die Einstellungen prüfen.",
        "Advoware nimmt die Zugangsdaten wieder an; der Abgleich läuft wieder.",
    ),
    ConditionKind.ESPOCRM_UNREACHABLE: (
        "EspoCRM ist seit {since} nicht erreichbar ({detail}). Der Abgleich wartet und holt alles nach.",
        "EspoCRM ist wieder erreichbar; der Abgleich läuft wieder.",
    ),
    ConditionKind.ESPOCRM_CREDENTIALS: (
        "EspoCRM lehnt seit {since} den API-Schlüssel ab ({detail}). Bitte die Einstellungen prüfen.",
        "EspoCRM nimmt den API-Schlüssel wieder an; der Abgleich läuft wieder.",
    ),
    ConditionKind.SWEEP_OVERDUE: (
        "Der regelmäßige Abgleich ist seit {since} nicht mehr abgeschlossen worden ({detail}).",
        "Der regelmäßige Abgleich läuft wieder.",
    ),
    ConditionKind.DELETIONS_HELD: (
        "Advoware meldet seit {since} auffällig viele Beteiligte als nicht vorhanden ({detail}). Es wird "
        "nichts als gelöscht markiert, bis eine Person die Einstellungen geprüft hat "
        "(python -m services.ops deletions --release oder --confirm).",
        "Die zurückgehaltenen Löschungen wurden von einer Person freigegeben.",
    ),
    ConditionKind.RECORD_FAILED: (
        "{detail}",
        "Der zuvor endgültig fehlgeschlagene Beteiligte wurde wieder erfolgreich abgeglichen.",
    ),
}


def _record_of(condition: AlertCondition) -> str | None:
    """The record a notice is about (a record's condition), else None (a note to nobody's record)."""
    return condition.subject if condition.kind is ConditionKind.RECORD_FAILED else None


@dataclass(frozen=True)
class Alerts:
    """`after`: ALERT_AFTER_SECONDS (Settings), the default of `raise_condition`'s `after`."""

    redis: Redis
    notice: Notice
    _: KW_ONLY
    after: timedelta
    clock: Callable[[], datetime] = utc_now

    async def raise_condition(
        self, condition: AlertCondition, detail: str, *, after: timedelta | None = None
    ) -> bool:
        """Note that `condition` holds; True when this call sent the alert notice."""
        name = condition.name
        ckey = keys.alert_condition(name)
        now = self.clock()
        pipe = self.redis.pipeline(transaction=True)
        pipe.hsetnx(ckey, "since", now.isoformat())
        pipe.hset(ckey, "detail", detail[:300])
        pipe.sadd(keys.ALERT_ACTIVE, name)
        pipe.hgetall(ckey)
        *_, state = await pipe.execute()
        if state.get("alerted"):
            return False
        since = datetime.fromisoformat(state["since"])
        if now - since < (self.after if after is None else after):
            return False
        if not await self.redis.hsetnx(ckey, "alerted", now.isoformat()):
            return False  # another process sent it
        text, _ = TEXTS[condition.kind]
        await self.notice.notify(_record_of(condition), text.format(detail=detail, since=_local(since)))
        return True

    async def clear_condition(self, condition: AlertCondition) -> bool:
        """Note that `condition` no longer holds; True when this call sent the recovery notice."""
        name = condition.name
        ckey = keys.alert_condition(name)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hget(ckey, "alerted")
        pipe.delete(ckey)
        pipe.srem(keys.ALERT_ACTIVE, name)
        alerted, deleted, _ = await pipe.execute()
        if not alerted or not deleted:
            return False
        _, text = TEXTS[condition.kind]
        await self.notice.notify(_record_of(condition), text)
        return True

    async def active(self) -> list[dict[str, Any]]:
        """The conditions known now, for `status` and the health detail."""
        out: list[dict[str, Any]] = []
        for name in sorted(await self.redis.smembers(keys.ALERT_ACTIVE)):
            state = await self.redis.hgetall(keys.alert_condition(name))
            if not state:
                await self.redis.srem(keys.ALERT_ACTIVE, name)
                continue
            out.append({"name": name, **state})
        return out


async def apply(
    alerts: Alerts,
    conditions: Mapping[AlertCondition, str | None],
    after: Mapping[AlertCondition, timedelta],
) -> None:
    """Raise every condition with a detail, clear every one mapped to None."""
    for condition, detail in conditions.items():
        if detail is None:
            await alerts.clear_condition(condition)
        else:
            await alerts.raise_condition(condition, detail, after=after.get(condition))


def _local(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%d.%m.%Y %H:%M UTC")
