"""Webhook intake: signature, shape, size and de-duplication decisions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import fakeredis
import pytest

from services.intake.auth import is_authorised
from services.intake.webhook import MAX_BATCH, is_redelivery, parse_and_verify, remember_delivery

SECRETS = {"wh1": "secret-one", "wh2": "secret-two"}


def php_json(items: Any) -> bytes:
    return json.dumps(items, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()


def sign(raw: bytes, webhook_id: str = "wh1", secret: str = "secret-one") -> dict[str, str]:
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return {
        "content-type": "application/json",
        "signature": base64.b64encode(f"{webhook_id}:{digest}".encode()).decode(),
    }


def test_valid_batch_is_accepted_with_ids_in_order_and_deduplicated() -> None:
    raw = php_json([{"id": "a1", "name": "Müller / Söhne"}, {"id": "b2"}, {"id": "a1", "titel": "Dr."}])
    res = parse_and_verify("update", raw, sign(raw), SECRETS)
    assert res.status == 200 and res.record_ids == ["a1", "b2"] and res.webhook_id == "wh1"
    assert res.changed_attributes["a1"] == ["name", "titel"]


def test_second_active_secret_is_accepted() -> None:
    raw = php_json([{"id": "a1"}])
    assert parse_and_verify("update", raw, sign(raw, "wh2", "secret-two"), SECRETS).status == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"signature": "not-base64!!"}, {"signature": base64.b64encode(b"unknown:abc").decode()}],
)
def test_missing_or_bad_signature_is_401(headers: dict[str, str]) -> None:
    raw = php_json([{"id": "a1"}])
    res = parse_and_verify("update", raw, headers, SECRETS)
    assert res.status == 401 and "signature" in res.body["error"]


def test_signature_over_other_bytes_is_401() -> None:
    raw = php_json([{"id": "a1"}])
    res = parse_and_verify("update", raw + b" ", sign(raw), SECRETS)
    assert res.status == 401


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"id":"a1"}', "JSON array"),
        (b"[]", "empty"),
        (b'["a1"]', "not an object"),
        (b'[{"name":"x"}]', "no valid id"),
        (b'[{"id":12}]', "no valid id"),
        (b'[{"id":"a b"}]', "invalid id"),
        (php_json([{"id": f"i{n}"} for n in range(MAX_BATCH + 1)]), "exceeds"),
    ],
)
def test_malformed_bodies_are_400_with_a_reason(body: bytes, reason: str) -> None:
    res = parse_and_verify("create", body, sign(body), SECRETS)
    assert res.status == 400 and reason in res.body["error"]


def test_oversized_body_is_413() -> None:
    body = b"[" + b" " * 1_100_000 + b"]"
    assert parse_and_verify("create", body, sign(body), SECRETS).status == 413


async def test_redelivered_batch_is_recognised() -> None:
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    raw = php_json([{"id": "a1"}])
    res = parse_and_verify("update", raw, sign(raw), SECRETS)
    assert not await is_redelivery(redis, res)
    await remember_delivery(redis, res)
    again = parse_and_verify("update", raw, sign(raw), SECRETS)
    assert await is_redelivery(redis, again)
    other_event = parse_and_verify("delete", raw, sign(raw), SECRETS)
    assert not await is_redelivery(redis, other_event)


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({"authorization": "Bearer tok-123"}, True),
        ({"Authorization": "bearer tok-123"}, True),
        ({"authorization": "Bearer tok-124"}, False),
        ({"authorization": "tok-123"}, False),
        ({}, False),
    ],
)
def test_admin_token(headers: dict[str, str], ok: bool) -> None:
    assert is_authorised(headers, "tok-123") is ok


async def test_same_body_after_a_later_edit_is_a_new_edit_not_a_redelivery() -> None:
    """A -> B -> A: the third delivery has the first one's bytes but is a person's new edit."""
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    a = php_json([{"id": "a1", "titel": "Dr."}])
    b = php_json([{"id": "a1", "titel": "Prof."}])
    first = parse_and_verify("update", a, sign(a), SECRETS)
    assert not await is_redelivery(redis, first)
    await remember_delivery(redis, first)
    assert await is_redelivery(redis, parse_and_verify("update", a, sign(a), SECRETS))  # same batch
    second = parse_and_verify("update", b, sign(b), SECRETS)
    assert not await is_redelivery(redis, second)
    await remember_delivery(redis, second)
    third = parse_and_verify("update", a, sign(a), SECRETS)
    assert not await is_redelivery(redis, third)
    await remember_delivery(redis, third)
    assert await is_redelivery(redis, parse_and_verify("update", a, sign(a), SECRETS))  # its redelivery


async def test_same_body_after_the_sync_wrote_the_record_is_a_new_edit() -> None:
    """A, then the sync writes Advoware's B into EspoCRM (no webhook: skipOwn), then A again."""
    from services.sync.backoff import OwnWrites

    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    a = php_json([{"id": "a1", "titel": "Dr."}, {"id": "b2", "titel": "Dr."}])
    first = parse_and_verify("update", a, sign(a), SECRETS)
    await remember_delivery(redis, first)
    await OwnWrites(redis).put("b2", "2026-07-01 10:20:00")  # the sync wrote b2
    assert not await is_redelivery(redis, parse_and_verify("update", a, sign(a), SECRETS))
