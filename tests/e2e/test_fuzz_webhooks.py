"""Hostile and malformed input against the running service (real Motia, real Redis, sandbox).

Hypothesis fuzzes the three webhook endpoints with wrong/missing/forged signatures, truncated
and non-JSON bodies, wrong JSON types, unknown fields, invalid dates, control characters and
very long strings, odd content types and encodings. Every answer must be a 4xx with a JSON
reason, or 200 for a correctly signed, well-formed batch: never 5xx, never 410 (EspoCRM would
unsubscribe the webhook), and the runtime must stay up. Meanwhile a person keeps editing a
record in EspoCRM and creates another one: that valid traffic must be fully processed.

Then the size limits: > 1 MB -> 413, 51 items -> 400, 50 large items (> 64 KB) -> 200, and a
signed batch replayed to another event's endpoint must not unlink a live record.

Figures (examples, status histogram) are printed (`pytest -s`) and written to
<tmp>/fuzz-webhooks.json.
"""

from __future__ import annotations

import base64
import json
import os
import string
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox import config as cfg
from sandbox.act import Actor
from sandbox.signing import webhook_signature, webhook_x_signature
from services.store import keys
from tests.support.stack import Stack, espo_create, espo_get, wait_linked, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox(demo=False)]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
EVENTS = ("create", "update", "delete")
MARKER = "Zqxfuzzvalue"
# Ids of records that do not exist: accepted batches cost one cheap "not found" sync each.
GHOST_IDS = [f"fffffffffffff{n:04x}" for n in range(4)]
STATS: dict[str, Any] = {"examples": 0, "status": Counter(), "by_kind": {}, "valid_edits": 0}


def post_signed(http: httpx.Client, raw: bytes, endpoint: str = "update") -> httpx.Response:
    """POST `raw` as JSON to a webhook endpoint, signed like EspoCRM with the update webhook's
    secret (EspoCRM signs the body only, so the signature does not name the endpoint)."""
    webhook_id, secret = cfg.WEBHOOKS["update"]
    return http.post(
        f"/vmh/webhook/beteiligte/{endpoint}",
        content=raw,
        headers={"Content-Type": "application/json", "Signature": webhook_signature(webhook_id, secret, raw)},
    )


@pytest.fixture(scope="module")
def fuzz_stack(module_stack: Stack) -> Stack:
    """The shared e2e stack with empty simulators (the module's `sandbox` mark). Its TMPDIR is
    its own (tests/e2e/conftest.py): Motia hands large request bodies to the Python step through
    a temp file there (scripts/patch-motia-core.mjs, large-args); none may be left behind."""
    return module_stack


@pytest.fixture(scope="module")
def motia_log(fuzz_stack: Stack) -> Callable[[], str]:
    """Motia's log from this module's start on (the stack ran other modules before)."""
    start = len(fuzz_stack.log_text("motia"))
    return lambda: fuzz_stack.log_text("motia")[start:]


@pytest.fixture(scope="module")
def actor(fuzz_stack: Stack) -> Actor:
    return Actor(fuzz_stack.espo_url, fuzz_stack.advo_url)


@pytest.fixture(scope="module")
def http(fuzz_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fuzz_stack.motia_url, timeout=60) as client:
        yield client


def create_person(actor: Actor, last_name: str) -> str:
    body = {"beteiligterTyp": "Person", "salutationName": "Mr.", "firstName": "Fritz", "lastName": last_name}
    return espo_create(actor, body)


def advo_record(actor: Actor, betnr: int) -> dict[str, Any]:
    return dict(actor.advo_call("GET", f"Beteiligte/{betnr}").json())


# --------------------------------------------------------------------------- strategies
ids = st.one_of(
    st.sampled_from(GHOST_IDS),
    st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=80),
    st.text(max_size=40),
    st.integers(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
hostile_strings = st.one_of(
    st.text(max_size=30).map(lambda s: MARKER + s),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=50),  # control characters
    st.integers(min_value=1000, max_value=20000).map(lambda n: "Ä" * n),  # very long names
    st.sampled_from(["2024-13-45", "1999-02-30", "31.12.1999", "0000-00-00", "\u202e\x00\x1b[2J"]),
)
values = st.recursive(
    # Finite floats: json.dumps would write NaN/Infinity, which is not JSON (sent raw below).
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        hostile_strings,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=6,
)
record_fields = st.fixed_dictionaries(
    {},
    optional={
        "name": hostile_strings,
        "firstName": hostile_strings,
        "lastName": hostile_strings,
        "geburtsdatum": hostile_strings,
        "emailAddress": hostile_strings,
        "phoneNumberData": values,
        "unknownFieldZq": values,
        "betnr": values,
    },
)
items = st.one_of(
    st.builds(lambda rid, fields: {**fields, "id": rid}, ids, record_fields),
    values,
)
hostile_json = st.one_of(st.lists(items, max_size=60), values, st.dictionaries(st.text(max_size=5), values))
# A well-formed batch: 1..3 known-absent ids (each accepted item costs one sync event).
valid_batches = st.lists(
    st.builds(lambda rid, fields: {**fields, "id": rid}, st.sampled_from(GHOST_IDS), record_fields),
    min_size=1,
    max_size=3,
)


def encode(value: Any, how: str) -> bytes:
    text = json.dumps(value, ensure_ascii=how == "ascii")
    raw = text.encode()
    if how == "truncated":
        return raw[: max(1, len(raw) // 2)]
    if how == "bom":
        return b"\xef\xbb\xbf" + raw
    return raw


bodies = st.one_of(
    st.builds(encode, hostile_json, st.sampled_from(["ascii", "utf8", "truncated", "bom"])),
    st.binary(max_size=400),
    st.sampled_from(
        [
            b"",
            b"null",
            b"[]",
            b"{}",
            b'"x"',
            b"[" * 200 + b"]" * 200,
            b"\x00" * 10,
            b'[{"id":"fffffffffffff0000","n":NaN}]',
            b'[{"id":"fffffffffffff0000","n":-Infinity}]',
            b'[{"id":"fffffffffffff0000","name":"\\ud800"}]',
        ]
    ),
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin1",
        None,
        "multipart/form-data; boundary=x",
    ]
)
signing = st.sampled_from(["none", "valid", "valid", "legacy", "other_secret", "garbage", "wrong_body"])
garbage_signatures = st.one_of(
    st.text(max_size=100).filter(lambda s: all(32 <= ord(c) < 127 for c in s)),
    st.binary(max_size=120).map(lambda b: base64.b64encode(b).decode()),
)


def sign_headers(mode: str, event: str, raw: bytes, garbage: str) -> dict[str, str]:
    webhook_id, secret = cfg.WEBHOOKS[event]
    if mode == "valid":
        return {"Signature": webhook_signature(webhook_id, secret, raw)}
    if mode == "legacy":
        return {"X-Signature": webhook_x_signature(webhook_id, secret, raw)}
    if mode == "other_secret":
        return {"Signature": webhook_signature(webhook_id, "not-" + secret, raw)}
    if mode == "wrong_body":
        return {"Signature": webhook_signature(webhook_id, secret, raw + b" ")}
    if mode == "garbage":
        return {"Signature": garbage}
    return {}


def check_refusal(resp: httpx.Response) -> None:
    assert 400 <= resp.status_code < 500 and resp.status_code != 410, (resp.status_code, resp.text[:300])
    reason = resp.json()
    assert isinstance(reason, dict) and (reason.get("error") or reason.get("reason")), resp.text[:300]
    assert MARKER not in json.dumps(reason.get("error"))


def record(kind: str, status: int) -> None:
    STATS["examples"] += 1
    STATS["status"][status] += 1
    STATS["by_kind"].setdefault(kind, Counter())[status] += 1


# --------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def valid_record(actor: Actor) -> dict[str, Any]:
    """A linked record a person keeps editing while the fuzzing runs."""
    rid = create_person(actor, "Fuzzvalid")
    rec = wait_linked(actor, rid)
    return {"id": rid, "betnr": rec["betnr"], "titel": None, "late_id": None}


def valid_traffic(actor: Actor, valid_record: dict[str, Any]) -> None:
    """Every 25th example: the person edits the record (a real, signed webhook follows)."""
    n = STATS["examples"]
    if n % 25 == 0:
        titel = f"Dr. {n}"
        resp = actor.espo.put(f"CBeteiligte/{valid_record['id']}", json={"titel": titel})
        assert resp.status_code == 200, resp.text
        valid_record["titel"] = titel
        STATS["valid_edits"] += 1
    if n == EXAMPLES // 2 and valid_record["late_id"] is None:
        valid_record["late_id"] = create_person(actor, "Fuzzlate")
        STATS["valid_edits"] += 1


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(
    event=st.sampled_from(EVENTS),
    raw=bodies,
    content_type=content_types,
    mode=signing,
    garbage=garbage_signatures,
    valid=valid_batches,
    use_valid=st.booleans(),
)
def test_fuzzed_webhooks_get_4xx_with_a_reason_or_200(
    http: httpx.Client,
    actor: Actor,
    valid_record: dict[str, Any],
    fuzz_stack: Stack,
    event: str,
    raw: bytes,
    content_type: str | None,
    mode: str,
    garbage: str,
    valid: list[dict[str, Any]],
    use_valid: bool,
) -> None:
    valid_traffic(actor, valid_record)
    well_formed = use_valid and mode in ("valid", "legacy")
    if well_formed:
        raw, content_type = json.dumps(valid).encode(), "application/json"
    headers = sign_headers(mode, event, raw, garbage)
    if content_type is not None:
        headers["Content-Type"] = content_type
    resp = http.post(f"/vmh/webhook/beteiligte/{event}", content=raw, headers=headers)
    kind = "well_formed" if well_formed else ("signed_hostile" if mode in ("valid", "legacy") else "unsigned")
    record(kind, resp.status_code)
    assert fuzz_stack.procs["motia"].poll() is None, "the Motia runtime died"
    if well_formed:
        assert resp.status_code == 200, resp.text
        assert resp.json().get("accepted") == len({i["id"] for i in valid}) or resp.json().get("duplicate")
        return
    if resp.status_code == 200:
        # Only a correctly signed body of a JSON array of objects with valid ids may pass.
        assert mode in ("valid", "legacy"), (mode, resp.text)
        items = json.loads(raw.decode("utf-8-sig"))
        assert isinstance(items, list) and 1 <= len(items) <= 50
        assert all(isinstance(i, dict) and isinstance(i.get("id"), str) for i in items)
        return
    check_refusal(resp)
    if mode not in ("valid", "legacy") and content_type and content_type.startswith("application/json"):
        # Parsed fine but not authentic: the reason is the signature.
        if resp.status_code == 401:
            assert "signature" in resp.json()["error"]


def test_valid_traffic_in_between_was_fully_processed(
    actor: Actor, valid_record: dict[str, Any], motia_log: Callable[[], str]
) -> None:
    assert STATS["examples"] >= EXAMPLES * 0.9, "the fuzz test must run first"
    betnr, titel = valid_record["betnr"], valid_record["titel"]
    assert titel, "the person's edits did not run"
    wait_until(lambda: advo_record(actor, betnr).get("titel") == titel, timeout=60, message="last edit")
    wait_until(lambda: espo_get(actor, valid_record["id"])["syncStatus"] == "clean", message="clean")
    late = wait_linked(actor, valid_record["late_id"])
    assert advo_record(actor, late["betnr"])["name"] == "Fuzzlate"
    assert "Traceback" not in motia_log()


def test_body_over_one_megabyte_is_413(http: httpx.Client) -> None:
    for raw in (
        json.dumps([{"id": GHOST_IDS[0], "name": "x" * 1_100_000}]).encode(),  # over Motia's 1 MiB
        json.dumps([{"id": GHOST_IDS[0], "name": "x" * 1_010_000}]).encode(),  # over the intake's 1 MB
    ):
        resp = post_signed(http, raw)
        record("huge", resp.status_code)
        assert resp.status_code == 413, resp.text[:300]
        check_refusal(resp)


def test_batch_limits(http: httpx.Client, fuzz_stack: Stack, motia_log: Callable[[], str]) -> None:
    def post(items: list[dict[str, Any]]) -> httpx.Response:
        raw = json.dumps(items).encode()
        resp = post_signed(http, raw)
        record("batch_limit", resp.status_code)
        return resp

    too_many = post([{"id": f"eeeeeeeeeeee{n:05x}"} for n in range(51)])
    assert too_many.status_code == 400 and "exceeds 50" in too_many.json()["error"]
    # 50 realistic create-sized items, well over 64 KB: the most EspoCRM ever sends at once.
    filler = {
        "name": "Ä" * 600,
        "firstName": "Ö" * 300,
        "emailAddressData": [{"emailAddress": "x@example.de", "primary": True}] * 5,
        "description": "\\u00fc" * 300,
    }
    full = [{**filler, "id": f"ddddddddddddd{n:04x}"} for n in range(50)]
    assert len(json.dumps(full).encode()) > 128 * 1024
    ok = post(full)
    assert ok.status_code == 200, ok.text[:300]
    assert ok.json() == {"accepted": 50}
    assert "E2BIG" not in motia_log()
    # The request body went to the step through a private temp file, removed right away.
    tmp = Path(fuzz_stack.env["TMPDIR"])
    wait_until(lambda: not list(tmp.glob("motia-args-*")), timeout=10, message="temp files removed")


def test_deeply_nested_json_is_400_not_a_crash(http: httpx.Client, fuzz_stack: Stack) -> None:
    for raw in (b"[" * 5000 + b"]" * 5000, b'[{"id":"abc","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}]"):
        resp = post_signed(http, raw)
        record("deep", resp.status_code)
        assert resp.status_code == 400, resp.text[:300]
        check_refusal(resp)
    assert fuzz_stack.procs["motia"].poll() is None


def test_signed_batch_replayed_to_the_delete_endpoint_does_not_unlink(
    http: httpx.Client,
    actor: Actor,
    valid_record: dict[str, Any],
    fuzz_stack: Stack,
    motia_log: Callable[[], str],
) -> None:
    """EspoCRM signs only the body; a captured update batch replayed to /delete (signed with the
    update webhook's secret) must not unlink a record that still exists."""
    rid, betnr = valid_record["id"], valid_record["betnr"]
    raw = json.dumps([{"id": rid, "titel": "Replay"}]).encode()
    resp = post_signed(http, raw, endpoint="delete")  # signed with the update webhook's secret
    record("replay", resp.status_code)
    assert resp.status_code in (200, 401, 403), resp.text
    if resp.status_code == 200:  # accepted: wait until the delete event has run
        wait_until(
            lambda: f"{rid}: unlinked" in (log := motia_log()) or f"{rid}: skipped" in log,
            timeout=60,
            message="the replayed delete event ran",
        )
    r = redis.Redis.from_url(fuzz_stack.redis_url, decode_responses=True)
    assert r.get(keys.snapshot(rid)), "the live record was unlinked by a replayed batch"
    assert not r.exists(keys.unlinked(rid))
    # And it still syncs.
    actor.espo.put(f"CBeteiligte/{rid}", json={"titel": "Nach Replay"}).raise_for_status()
    wait_until(lambda: advo_record(actor, betnr).get("titel") == "Nach Replay", timeout=60, message="sync")


def test_figures(tmp_path_factory: pytest.TempPathFactory, fuzz_stack: Stack) -> None:
    figures = {
        "examples": STATS["examples"],
        "status": {str(k): v for k, v in sorted(STATS["status"].items())},
        "by_kind": {k: {str(s): n for s, n in sorted(c.items())} for k, c in STATS["by_kind"].items()},
        "valid_edits_in_between": STATS["valid_edits"],
    }
    out = Path(tmp_path_factory.getbasetemp()) / "fuzz-webhooks.json"
    out.write_text(json.dumps(figures, indent=2))
    print("\nwebhook fuzz figures:", json.dumps(figures, indent=2), f"\n(written to {out})")
    assert not any(int(s) >= 500 or int(s) == 410 for s in figures["status"])
    assert fuzz_stack.procs["motia"].poll() is None
