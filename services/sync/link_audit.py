"""The periodic "one betnr, one record" check.

Creates and links are serialised per identity and per betnr (services/sync/claims.py) and the
first sync of a pair checks its betnr (services/sync/linking.py); this check finds what got past
them anyway (a person typing a betnr into two records, an import, Redis emptied mid-create):
once a day (`AUDIT_INTERVAL`), from the sweep, one paged EspoCRM query for the linked records
(`id,betnr` only). Every betnr held by several records is logged by ids, recorded as a
`duplicate_link` event (the status report's `recent_duplicate_links`) and notified on each
record involved - once per betnr and set of records, not every day again. The last result is in
`keys.LINK_AUDIT` (the status report's `link_audit`). Nothing is changed: a person decides.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.store import keys
from services.store.counters import EventKind
from services.sync.model import ENTITY, as_int
from services.sync.stores import RecentEvents

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from services.sync.notify import Notifier
    from services.sync.ports import EspoListingApi

log = logging.getLogger(__name__)

AUDIT_INTERVAL = timedelta(hours=24)


def duplicate_text(betnr: int, ids: list[str]) -> str:
    return (
        f"Verknüpfung: die Advoware-Nr. {betnr} ist mit mehreren EspoCRM-Datensätzen verknüpft "
        f"({', '.join(ids)}). Eine Advoware-Nr. gehört zu genau einem Datensatz: bitte die Duplikate "
        "zusammenführen oder betnr im falschen Datensatz leeren."
    )


@dataclass(kw_only=True)
class LinkAudit:
    """The check as the sweep runs it: at most once per `interval`, its last result kept in
    Redis for the status report."""

    espo: EspoListingApi
    redis: Redis
    notifier: Notifier
    interval: timedelta = AUDIT_INTERVAL

    async def last(self) -> dict[str, Any] | None:
        raw = await self.redis.get(keys.LINK_AUDIT)
        return json.loads(raw) if raw else None

    async def run_if_due(self, now: datetime) -> dict[int, list[str]] | None:
        """Run the check if the last one is older than `interval`; the duplicates found."""
        last = await self.last()
        if last is not None and now - datetime.fromisoformat(last["at"]) < self.interval:
            return None
        return await self.run(now)

    async def run(self, now: datetime) -> dict[int, list[str]]:
        holders: dict[int, set[str]] = {}
        where = [{"type": "isNotNull", "attribute": "betnr"}]
        async for row in self.espo.iterate(ENTITY, where=where, select="id,betnr"):
            betnr = as_int(row.get("betnr"))
            if betnr is not None:
                holders.setdefault(betnr, set()).add(str(row["id"]))
        found = {betnr: sorted(ids) for betnr, ids in sorted(holders.items()) if len(ids) > 1}
        reported = ((await self.last()) or {}).get("duplicates", {})
        for betnr, ids in found.items():
            log.error("betnr %s is linked to %d EspoCRM records: %s", betnr, len(ids), ", ".join(ids))
            if reported.get(str(betnr)) == ids:
                continue  # told already
            await RecentEvents(self.redis).record(
                EventKind.DUPLICATE_LINK, ids[0], f"betnr={betnr} records={','.join(ids)}"
            )
            for record_id in ids:
                await self.notifier.notify(record_id, duplicate_text(betnr, ids))
        summary = {
            "at": now.isoformat(),
            "linked_betnrs": len(holders),
            "duplicates": {str(b): ids for b, ids in found.items()},
        }
        await self.redis.set(keys.LINK_AUDIT, json.dumps(summary))
        log.info("link check: %d linked betnrs, %d held by several records", len(holders), len(found))
        return found
