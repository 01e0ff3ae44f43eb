"""In-memory stand-ins for the two API clients (same method names and errors as the real
clients), for fast unit tests of the engine and the sweep. They count every call."""

from __future__ import annotations

import builtins
import copy
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import fakeredis

from services.errors import NotFoundError, VersionConflictError
from services.http.base import before_write

BERLIN = ZoneInfo("Europe/Berlin")


class Clock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 7, 1, 10, 0, 0, tzinfo=UTC)

    def tick(self, seconds: float = 1) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class RecordedSleeps(list[float]):
    """A `sleep` for `RetryPolicy` that records each delay instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _espo_dt(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


FAKE_USER_NAME = "jdoe"
FAKE_API_USER_ID = "66a0api0user00001"  # the EspoCRM user the service writes as
FAKE_PERSON_ID = "66a0person0000001"  # a person saving in EspoCRM


class FailurePlan:
    """Scripted failures of a fake client: `fail_next[op]` raises its exceptions one call at a
    time; while `down` is set, every call raises it (the system is down or refuses us);
    `meanwhile[op]` runs its callbacks one call at a time just before the call takes effect
    (a person saves between an action's read and its write); `lose_answer[op]` carries the
    next call out and then raises its exception (the answer never arrived)."""

    def __init__(self) -> None:
        self.fail_next: dict[str, list[Exception]] = {}
        self.down: Exception | None = None
        self.meanwhile: dict[str, list[Callable[[], Any]]] = {}
        self.lose_answer: dict[str, list[Exception]] = {}

    def _maybe_fail(self, op: str) -> None:
        callbacks = self.meanwhile.get(op)
        if callbacks:
            callbacks.pop(0)()
        if self.down is not None:
            raise self.down
        queue = self.fail_next.get(op)
        if queue:
            raise queue.pop(0)

    def _maybe_lose_answer(self, op: str) -> None:
        queue = self.lose_answer.get(op)
        if queue:
            raise queue.pop(0)


class FakeEspo(FailurePlan):
    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__()
        self.clock = clock or Clock()
        self.records: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self.updates: list[tuple[str, dict[str, Any]]] = []
        self.notifications: list[tuple[str | None, str]] = []
        self.webhook_list: list[dict[str, Any]] = []  # the API user's, as `GET /Webhook` lists them
        self._ids = itertools.count(1)

    def add(self, record: dict[str, Any]) -> str:
        rid = record.get("id") or f"6650{next(self._ids):013x}"
        now = _espo_dt(self.clock.tick())
        self.records[rid] = {
            "syncStatus": "pending_sync",
            "createdAt": now,
            "modifiedAt": now,
            "versionNumber": 1,
            **record,
            "id": rid,
        }
        return rid

    def edit(self, rid: str, **changes: Any) -> None:
        """A person edits the record (no webhook here; tests trigger the sync directly)."""
        self.records[rid].update(changes)
        self.records[rid]["modifiedAt"] = _espo_dt(self.clock.tick())
        self.records[rid]["modifiedById"] = FAKE_PERSON_ID
        self.records[rid]["versionNumber"] = int(self.records[rid].get("versionNumber") or 0) + 1

    async def get(self, entity: str, record_id: str) -> dict[str, Any]:
        if entity == "App" and record_id == "user":  # GET App/user: the API user the service is
            self.calls["get_app_user"] += 1
            return {"user": {"id": FAKE_API_USER_ID, "userName": "advoware-sync"}}
        if entity == "User":  # the notify user's name lookup
            self.calls["get_user"] += 1
            return {"id": record_id, "userName": FAKE_USER_NAME, "isActive": True}
        self.calls["get"] += 1
        self._maybe_fail("get")
        if record_id not in self.records:
            raise NotFoundError("not found", system="espocrm", status_code=404, record_id=record_id)
        return copy.deepcopy(self.records[record_id])

    async def update(
        self, entity: str, record_id: str, data: dict[str, Any], *, version_number: int | None = None
    ) -> dict[str, Any]:
        self.calls["update"] += 1
        await before_write("PUT")  # as the real clients (services/http/base.py)
        self._maybe_fail("update")
        if record_id not in self.records:
            raise NotFoundError("not found", system="espocrm", status_code=404, record_id=record_id)
        rec = self.records[record_id]
        # Optimistic concurrency as EspoCRM: a stale version and a written value that differs.
        current = rec.get("versionNumber")
        if (
            version_number is not None
            and version_number != current
            and any(rec.get(k) != v for k, v in data.items())
        ):
            self.calls["version_conflict"] += 1
            raise VersionConflictError(
                "version conflict",
                system="espocrm",
                record_id=record_id,
                current_values=copy.deepcopy(rec),
                version_number=current if isinstance(current, int) else None,
            )
        self.updates.append((record_id, copy.deepcopy(data)))
        rec["versionNumber"] = int(current or 0) + 1
        rec.update(copy.deepcopy(data))
        if "emailAddressData" in data:
            primary = next((e for e in data["emailAddressData"] if e.get("primary")), None)
            rec["emailAddress"] = primary["emailAddress"] if primary else None
        if "phoneNumberData" in data:
            primary = next((p for p in data["phoneNumberData"] if p.get("primary")), None)
            rec["phoneNumber"] = primary["phoneNumber"] if primary else None
        rec["modifiedAt"] = _espo_dt(self.clock.tick())
        rec["modifiedById"] = FAKE_API_USER_ID
        self._maybe_lose_answer("update")
        return copy.deepcopy(rec)

    async def create(
        self, entity: str, data: Mapping[str, Any], *, skip_duplicate_check: bool = False
    ) -> dict[str, Any]:
        """A record (backfill --create-in-espocrm) or a stream note (the notifier's channel,
        recorded as (parent id, post))."""
        await before_write("POST")
        if entity != "Note":
            self.calls["create"] += 1
            self._maybe_fail("create")
            rid = self.add(copy.deepcopy(dict(data)))
            return copy.deepcopy(self.records[rid])
        self.calls["notify"] += 1
        self._maybe_fail("notify")
        if data["parentType"] == "CBeteiligte" and data["parentId"] not in self.records:
            raise NotFoundError("not found", system="espocrm", status_code=404, record_id=data["parentId"])
        self.notifications.append((data["parentId"], data["post"]))
        return {"id": f"note{len(self.notifications)}", **data}

    def _match(self, rec: dict[str, Any], cond: dict[str, Any]) -> bool:
        value = rec.get(cond["attribute"])
        t = cond["type"]
        if t == "equals":
            return bool(value == cond["value"])
        if t == "in":
            return value in cond["value"]
        if t == "isNull":
            return value in (None, "")
        if t == "isNotNull":
            return value not in (None, "")
        if t == "before":
            return value is not None and str(value) < cond["value"]
        if t == "after":
            return value is not None and str(value) > cond["value"]
        raise AssertionError(f"fake does not know where type {t}")

    async def list(
        self,
        entity: str,
        *,
        where: Any = None,
        select: Any = None,
        order_by: Any = None,
        order: str = "asc",
        offset: int = 0,
        max_size: int = 200,
    ) -> tuple[int, list[dict[str, Any]]]:
        self.calls["list"] += 1
        self._maybe_fail("list")
        rows = [r for r in self.records.values() if all(self._match(r, c) for c in (where or []))]
        if order_by:
            rows.sort(key=lambda r: str(r.get(order_by) or ""), reverse=order == "desc")
        return len(rows), [copy.deepcopy(r) for r in rows[offset : offset + max_size]]

    async def iterate(
        self, entity: str, *, where: Any = None, select: Any = None, **_: Any
    ) -> AsyncIterator[dict[str, Any]]:
        _total, rows = await self.list(entity, where=where, max_size=10**9)
        for row in rows:
            yield row

    async def metadata(self) -> dict[str, Any]:
        """An instance set up as the one schema says (stream and concurrency control on)."""
        from services.espocrm.schema import ENTITY, entity_metadata

        meta = entity_metadata()
        return {"scopes": {ENTITY: meta["scopes"]}, "entityDefs": {ENTITY: meta["entityDefs"]}}

    async def webhooks(self) -> builtins.list[dict[str, Any]]:
        return copy.deepcopy(self.webhook_list)


class FakeTokens:
    """The Advoware client's token provider, as the health check sees it."""

    def __init__(self) -> None:
        self.fail: Exception | None = None

    async def get(self) -> str:
        if self.fail is not None:
            raise self.fail
        return "fake-token"


class FakeAdvo(FailurePlan):
    def __init__(self, clock: Clock | None = None, tz: ZoneInfo = BERLIN) -> None:
        super().__init__()
        self.clock = clock or Clock()
        self.tz = tz
        self.records: dict[int, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self.puts: list[tuple[int, dict[str, Any]]] = []
        # When set, create() stores the record and then raises this (a lost answer).
        self.lose_create_answer: Exception | None = None
        self._betnr = itertools.count(100001)
        self.tokens = FakeTokens()

    def _local_now(self) -> str:
        return self.clock.tick().astimezone(self.tz).replace(tzinfo=None).isoformat(timespec="seconds")

    def add(self, record: dict[str, Any]) -> int:
        betnr = next(self._betnr)
        now = self._local_now()
        self.records[betnr] = {**copy.deepcopy(record), "betNr": betnr, "angelegtAm": now, "geaendertAm": now}
        return betnr

    def edit(self, betnr: int, **changes: Any) -> None:
        self.records[betnr].update(changes)
        self.records[betnr]["geaendertAm"] = self._local_now()

    async def get_beteiligter(self, betnr: int) -> dict[str, Any]:
        self.calls["get"] += 1
        self._maybe_fail("get")
        if betnr not in self.records:
            raise NotFoundError("not found", system="advoware", status_code=404, record_id=str(betnr))
        return copy.deepcopy(self.records[betnr])

    async def create_beteiligter(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.calls["create"] += 1
        await before_write("POST")
        self._maybe_fail("create")
        betnr = self.add(payload)
        if self.lose_create_answer is not None:
            exc, self.lose_create_answer = self.lose_create_answer, None
            raise exc
        return copy.deepcopy(self.records[betnr])

    async def update_beteiligter(self, betnr: int, payload: dict[str, Any]) -> dict[str, Any]:
        self.calls["update"] += 1
        await before_write("PUT")
        self._maybe_fail("update")
        if betnr not in self.records:
            raise NotFoundError("not found", system="advoware", status_code=404, record_id=str(betnr))
        self.puts.append((betnr, copy.deepcopy(payload)))
        old = self.records[betnr]
        # Full replace of writable fields, like the assumed API: omitted fields are cleared.
        self.records[betnr] = {
            **{k: None for k in old if k not in ("betNr", "angelegtAm", "geaendertAm")},
            **copy.deepcopy(payload),
            "betNr": betnr,
            "angelegtAm": old.get("angelegtAm"),
            "geaendertAm": self._local_now(),
        }
        self._maybe_lose_answer("update")
        return copy.deepcopy(self.records[betnr])

    async def iter_beteiligte(
        self, *, changed_since_local: str | None = None, take: int = 100, start: int = 0
    ) -> AsyncIterator[dict[str, Any]]:
        self.calls["list"] += 1
        self._maybe_fail("list")
        for rec in list(self.records.values())[start:]:
            if changed_since_local is None or rec["geaendertAm"] >= changed_since_local:
                yield copy.deepcopy(rec)


def fake_redis() -> fakeredis.FakeAsyncRedis:
    """A fresh in-memory Redis that decodes to str, as services.store.connection.connect does."""
    return fakeredis.FakeAsyncRedis(decode_responses=True)
