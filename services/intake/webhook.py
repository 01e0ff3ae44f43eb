"""EspoCRM webhook intake: verify, validate, de-duplicate; the API steps only emit.

Answers (EspoCRM's retry rules decide these, see shared/docs/espocrm-api.md §1.3), checked
in this order:
- 413 for a body over the limit;
- 401 for a missing or wrong signature (EspoCRM retries 401, so a secret rotation that
  lags behind loses nothing);
- 415 for a content type other than `application/json` (utf-8) or a content coding;
- 400 for a body that is not a JSON array of 1-50 objects with string ids, or nested deeper
  than 64 levels (not retried: resending the same bytes cannot help);
- 200 with the accepted ids otherwise, also for a redelivered batch (answered from the
  de-duplication record, nothing emitted twice; equal bytes after a later edit or sync of
  one of its records are a new edit, see `is_redelivery`);
- never 410 (it would unsubscribe the webhook) and never 5xx for bad input.

The port gate (scripts/motia-port-gate.mjs, its check in scripts/vmh-webhook-check.mjs) runs
the same checks in Node before any step process starts, so a refused request costs no Python
process; this module checks again (defence in depth). Both are run against one vector file, tests/support/webhook_vectors.json.

Only record ids leave this module: attribute *values* from the body are never logged or
put on the event bus (Motia keeps event data in Redis and shows it in the Workbench).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from services.events import WebhookEvent
from services.store import keys

if TYPE_CHECKING:
    from redis.asyncio import Redis

MAX_BATCH = 50
MAX_BODY_BYTES = 1_000_000
MAX_ID_LENGTH = 64
MAX_DEPTH = 64  # Motia's body-depth patch refuses deeper bodies anyway


@dataclass
class IntakeResult:
    status: int
    body: dict[str, Any]
    record_ids: list[str] = field(default_factory=list)
    changed_attributes: dict[str, list[str]] = field(default_factory=dict)
    webhook_id: str | None = None
    dedup_key: str | None = None

    def response(self) -> dict[str, Any]:
        return {"status": self.status, "body": self.body}


def _refuse(status: int, reason: str) -> IntakeResult:
    return IntakeResult(status=status, body={"error": reason})


def parse_and_verify(
    event: WebhookEvent, raw: bytes, headers: Mapping[str, str], secrets: Mapping[str, str]
) -> IntakeResult:
    """Check signature, size and shape. Pure: no Redis, no clock."""
    from services.espocrm.webhook import WebhookSignatureError, verify_signature

    if len(raw) > MAX_BODY_BYTES:
        return _refuse(413, f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        webhook_id = verify_signature(raw, headers, secrets)
    except WebhookSignatureError as exc:
        return _refuse(401, f"signature rejected: {exc.reason}")
    refused = _content_type_refusal(headers)
    if refused:
        return _refuse(415, refused)
    try:
        items = json.loads(raw.decode("utf-8").removeprefix("\ufeff"), parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError):
        return _refuse(400, "body is not valid JSON")
    except RecursionError:
        return _refuse(400, "body is nested too deeply")
    if _too_deep(items):
        return _refuse(400, "body is nested too deeply")
    if not isinstance(items, list):
        return _refuse(400, "body must be a JSON array of records")
    if not items:
        return _refuse(400, "empty batch")
    if len(items) > MAX_BATCH:
        return _refuse(400, f"batch of {len(items)} items exceeds {MAX_BATCH}")
    ids: list[str] = []
    changed: dict[str, list[str]] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            return _refuse(400, f"item {index} is not an object")
        record_id = item.get("id")
        if not isinstance(record_id, str) or not record_id or len(record_id) > MAX_ID_LENGTH:
            return _refuse(400, f"item {index} has no valid id")
        if not record_id.replace("-", "").isalnum() or not record_id.isascii():
            return _refuse(400, f"item {index} has an invalid id")
        if record_id not in changed:
            ids.append(record_id)
            changed[record_id] = []
        changed[record_id].extend(k for k in item if k != "id" and isinstance(k, str) and len(k) <= 64)
    result = IntakeResult(status=200, body={"accepted": len(ids)}, record_ids=ids, webhook_id=webhook_id)
    result.changed_attributes = {k: sorted(set(v))[:50] for k, v in changed.items()}
    result.dedup_key = keys.webhook_delivery(event, hashlib.sha256(raw).hexdigest())
    return result


def _not_json(constant: str) -> Any:
    """NaN and Infinity are no JSON (Python's parser takes them, the gate's does not)."""
    raise ValueError(f"{constant} is not JSON")


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((str(v) for k, v in headers.items() if k.lower() == name), "")


def _content_type_refusal(headers: Mapping[str, str]) -> str | None:
    """What EspoCRM sends: `application/json`, at most a utf-8 charset, no content coding."""
    media, *params = _header(headers, "content-type").split(";")
    for param in params:
        name, sep, value = param.partition("=")
        if sep and name.strip().lower() == "charset":
            if value.strip().removeprefix('"').removesuffix('"').lower() not in ("utf-8", "utf8"):
                return "content type must be application/json (utf-8)"
    if media.strip().lower() != "application/json":
        return "content type must be application/json (utf-8)"
    if _header(headers, "content-encoding").strip().lower() not in ("", "identity"):
        return "content encoding not supported"
    return None


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (list, dict)):
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


async def is_redelivery(redis: Redis, result: IntakeResult) -> bool:
    """True only for a second delivery of the same batch with nothing in between.

    EspoCRM's webhook items carry neither `modifiedAt` nor a version (shared/docs/espocrm-api.md
    §1.1), so equal bytes can also be a new edit back to earlier values (A -> B -> A). The
    record of an accepted batch therefore remembers, per record, the intake generation (bumped
    by every accepted batch naming it) and the `modifiedAt` of our own last EspoCRM write; an
    equal body is dropped only while both are unchanged. A later batch for the record, or a
    sync that wrote it (Advoware's value), makes the same body a new edit, emitted again.
    A redelivery that comes after its own sync wrote the record is emitted too: one more sync
    that finds nothing to do, never a lost edit.
    """
    if not result.dedup_key:
        return False
    raw = await redis.get(result.dedup_key)
    if raw is None:
        return False
    try:
        remembered = json.loads(raw)
    except ValueError:  # a record of an earlier version ("1"): not provably the same moment
        return False
    return bool(remembered == await _markers(redis, result.record_ids))


async def remember_delivery(redis: Redis, result: IntakeResult) -> None:
    """Called after every event of the batch was emitted: a redelivery is then a no-op."""
    if not result.dedup_key:
        return
    pipe = redis.pipeline(transaction=False)
    for record_id in result.record_ids:
        pipe.incr(keys.webhook_generation(record_id))
        pipe.expire(keys.webhook_generation(record_id), keys.WEBHOOK_DEDUP_TTL_SECONDS)
    await pipe.execute()
    markers = await _markers(redis, result.record_ids)
    await redis.set(result.dedup_key, json.dumps(markers), ex=keys.WEBHOOK_DEDUP_TTL_SECONDS)


async def _markers(redis: Redis, record_ids: list[str]) -> dict[str, list[str]]:
    """Per record: [intake generation, modifiedAt of our last EspoCRM write] ("" if none)."""
    pipe = redis.pipeline(transaction=False)
    for record_id in record_ids:
        pipe.get(keys.webhook_generation(record_id))
    pipe.hmget(keys.OWN_WRITES_ESPOCRM, record_ids)
    *generations, own = await pipe.execute()
    return {
        record_id: [_text(generation), _text(written)]
        for record_id, generation, written in zip(record_ids, generations, own, strict=True)
    }


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
