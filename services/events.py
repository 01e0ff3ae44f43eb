"""The Motia events of the sync: their topics and payloads, in one place.

Imports nothing of the project, so a step can import it at config discovery for its topic names
at no cost, and the intake (webhooks), the sweep, the ops actions and the sync step's dispatcher
all build and read the same shapes. Event data carry record ids only, never personal values.

| topic                       | emitted by                       | payload     |
|-----------------------------|----------------------------------|-------------|
| vmh.beteiligte.create       | the create webhook               | SyncEvent   |
| vmh.beteiligte.update       | the update webhook               | SyncEvent   |
| vmh.beteiligte.delete       | the delete webhook               | SyncEvent   |
| vmh.beteiligte.sync_check   | the sweep, the ops actions       | SyncCheck   |
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, NotRequired, TypedDict

WebhookEvent = Literal["create", "update", "delete"]

WEBHOOK_TOPICS: dict[WebhookEvent, str] = {
    "create": "vmh.beteiligte.create",
    "update": "vmh.beteiligte.update",
    "delete": "vmh.beteiligte.delete",
}
SYNC_CHECK_TOPIC = "vmh.beteiligte.sync_check"
SYNC_TOPICS: tuple[str, ...] = (*WEBHOOK_TOPICS.values(), SYNC_CHECK_TOPIC)
# How long a runtime's BullMQ lock on a sync job lasts (Motia's queue `visibilityTimeout`; the
# runtime renews it every half of that while it lives). Motia's default, 900 s, kept the jobs a
# killed runtime had in flight locked - unprocessed - for 15 minutes. BullMQ's own default: another
# runtime's stalled check (every 30 s) takes them over within about a minute.
SYNC_JOB_LOCK_SECONDS = 30


class SyncEvent(TypedDict):
    """A verified webhook batch: every record id of one EspoCRM delivery."""

    event: WebhookEvent
    ids: list[str]
    webhookId: NotRequired[str | None]
    changed: NotRequired[dict[str, list[str]]]  # record id -> attributes EspoCRM named as changed


class SyncCheck(TypedDict):
    """Records the service itself wants looked at (sweep, ops): `trigger` is a Trigger's value."""

    ids: list[str]
    trigger: str


class Emitted(TypedDict):
    """What a step's `context.emit` takes."""

    topic: str
    data: Mapping[str, Any]


# A step's `context.emit`, as the services take it.
Emit = Callable[[Emitted], Awaitable[None]]


def webhook_event(
    event: WebhookEvent,
    ids: Sequence[str],
    *,
    webhook_id: str | None = None,
    changed: Mapping[str, list[str]] | None = None,
) -> Emitted:
    data: SyncEvent = {"event": event, "ids": list(ids), "webhookId": webhook_id}
    if changed is not None:
        data["changed"] = {rid: list(changed.get(rid, [])) for rid in ids}
    return {"topic": WEBHOOK_TOPICS[event], "data": data}


def sync_check(ids: Sequence[str], trigger: str) -> Emitted:
    data: SyncCheck = {"ids": list(ids), "trigger": trigger}
    return {"topic": SYNC_CHECK_TOPIC, "data": data}
