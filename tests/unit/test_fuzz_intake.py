"""Hypothesis fuzz of the webhook intake (`parse_and_verify`), without a server.

Properties for any bytes and any headers:
- it never raises; the answer is 200, 400, 401, 413 or 415, never 5xx or 410;
- every refusal carries a reason that names no value from the body;
- an unsigned or wrongly signed body is 401 (or 413 when too large), whatever it contains;
- a correctly signed body is 200 exactly when it is UTF-8 JSON (no NaN/Infinity, at most 64
  levels deep) holding an array of 1..50 objects with valid ids, and then only ids and
  attribute *names* leave the intake (never values).

The same properties are checked against the real Motia runtime in tests/e2e/test_fuzz_webhooks.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import string
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.intake.webhook import MAX_BATCH, MAX_BODY_BYTES, MAX_ID_LENGTH, parse_and_verify

SECRETS = {"6650a1b2c3d4e5f02": "fuzz-secret-update", "6650a1b2c3d4e5f09": "fuzz-secret-rotated"}
WEBHOOK_ID, SECRET = next(iter(SECRETS.items()))
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ALLOWED = {200, 400, 401, 413, 415}
# Values carrying this marker must never appear in a reason or in what the intake passes on.
MARKER = "Zqxsecretvalue"


def sign(raw: bytes, webhook_id: str = WEBHOOK_ID, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return {
        "content-type": "application/json",
        "signature": base64.b64encode(f"{webhook_id}:{digest}".encode()).decode(),
    }


def legacy_sign(raw: bytes, webhook_id: str = WEBHOOK_ID, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).digest()
    return {
        "content-type": "application/json",
        "x-signature": base64.b64encode(webhook_id.encode() + b":" + digest).decode(),
    }


def valid_id(value: Any) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_LENGTH
        and value.isascii()
        and value.replace("-", "").isalnum()
    )


def float_constant(name: str) -> Any:
    raise ValueError(name)  # NaN, Infinity: not JSON


def depth(value: Any) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def expected_status(raw: bytes) -> int:
    """The oracle for a correctly signed body."""
    if len(raw) > MAX_BODY_BYTES:
        return 413
    try:
        items = json.loads(raw.decode("utf-8").removeprefix("\ufeff"), parse_constant=float_constant)
    except (ValueError, RecursionError):
        return 400
    if depth(items) > 64 or not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        return 400
    if not all(isinstance(i, dict) and valid_id(i.get("id")) for i in items):
        return 400
    return 200


# --------------------------------------------------------------------------- strategies
ids = st.one_of(
    st.text(alphabet="0123456789abcdef", min_size=17, max_size=17),
    st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=70),
    st.text(max_size=80),  # unicode, control characters, empty
    st.integers(),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40).map(lambda s: MARKER + s),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=2000),
    st.sampled_from(["2024-13-45", "0000-00-00", "31.12.1999", "1999-02-30", "\x00\x1b[31m\u202e"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=8,
)
items = st.one_of(
    st.fixed_dictionaries({"id": ids}, optional={"name": json_values, "geburtsdatum": json_values}).flatmap(
        lambda base: st.dictionaries(st.text(max_size=70), json_values, max_size=4).map(
            lambda extra: {**extra, **base}
        )
    ),
    json_values,
)
batches = st.one_of(
    st.lists(items, min_size=0, max_size=55),
    json_values,
)


def encodings(value: Any) -> st.SearchStrategy[bytes]:
    text = json.dumps(value, ensure_ascii=False)
    return st.sampled_from(
        [
            text.encode(),
            json.dumps(value).encode(),
            text.encode()[: max(0, len(text.encode()) // 2)],  # truncated
            text.encode("utf-16"),
            b"\xef\xbb\xbf" + text.encode(),  # BOM
        ]
    )


bodies = st.one_of(
    batches.flatmap(encodings),
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
)
header_values = st.one_of(
    st.text(max_size=120),
    st.binary(max_size=96).map(lambda b: base64.b64encode(b).decode()),
    st.sampled_from(
        [
            "",
            "=",
            "not-base64!!",
            base64.b64encode(b"unknown:" + b"0" * 64).decode(),
            base64.b64encode(WEBHOOK_ID.encode() + b":" + b"z" * 64).decode(),
            base64.b64encode(b"\xff\xfe:" + b"0" * 64).decode(),
        ]
    ),
)
headers = st.dictionaries(
    st.sampled_from(["signature", "x-signature", "Signature", "content-type"]), header_values
)


def check(raw: bytes, hdrs: dict[str, str]) -> Any:
    result = parse_and_verify("update", raw, hdrs, SECRETS)
    assert result.status in ALLOWED
    if result.status != 200:
        reason = result.body["error"]
        assert isinstance(reason, str) and reason
        assert MARKER not in reason
        assert result.record_ids == []
    return result


# --------------------------------------------------------------------------- properties
@FUZZ
@given(raw=bodies, hdrs=headers)
def test_unsigned_or_forged_requests_are_refused(raw: bytes, hdrs: dict[str, str]) -> None:
    result = check(raw, hdrs)
    assert result.status in (401, 413) or hdrs == sign(raw)


@FUZZ
@given(raw=bodies, legacy=st.booleans(), rotated=st.booleans())
@example(raw=b"[" * 20_000 + b"]" * 20_000, legacy=False, rotated=False)
@example(raw=b'[{"id":"abc","n":1' + b"0" * 5000 + b"}]", legacy=False, rotated=False)
@example(
    raw=json.dumps([{"id": f"{i:017x}"} for i in range(MAX_BATCH + 1)]).encode(), legacy=True, rotated=False
)
@example(raw=b" " * (MAX_BODY_BYTES + 1), legacy=False, rotated=False)
def test_signed_bodies_are_judged_by_shape(raw: bytes, legacy: bool, rotated: bool) -> None:
    wid, secret = list(SECRETS.items())[1] if rotated else (WEBHOOK_ID, SECRET)
    hdrs = legacy_sign(raw, wid, secret) if legacy else sign(raw, wid, secret)
    result = check(raw, hdrs)
    assert result.status == expected_status(raw), result.body
    if result.status == 200:
        items = json.loads(raw)
        assert result.record_ids == list(dict.fromkeys(i["id"] for i in items))
        assert result.body == {"accepted": len(result.record_ids)}
        assert result.webhook_id == wid
        # Only attribute names travel on (Motia keeps event data in Redis): never values.
        passed_on = json.dumps([result.record_ids, result.changed_attributes, result.body])
        assert MARKER not in passed_on or any(MARKER in k for i in items for k in i)


@FUZZ
@given(raw=bodies, flip=st.integers(min_value=0, max_value=10_000))
def test_any_changed_byte_breaks_the_signature(raw: bytes, flip: int) -> None:
    if not raw:
        return
    hdrs = sign(raw)
    index = flip % len(raw)
    tampered = raw[:index] + bytes([raw[index] ^ 0x01]) + raw[index + 1 :]
    result = check(tampered, hdrs)
    assert result.status in (401, 413)
