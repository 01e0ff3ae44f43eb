"""Secrets and personal data at run time (real Motia, real Redis, sandbox simulators).

The module runs the usual flows on the shared stack - creates, edits on both sides, a conflict,
a delete, faults (5xx, 503 "nicht angemeldet", 429, dropped connections, token expiry, a
permanent failure), refused webhooks - with personal data carrying unique markers. Then:

- no API key, password, access token, webhook secret or admin token appears in the Motia
  log, the sandbox log, any Redis key or value (Motia's Workbench state: logs, traces, queue
  jobs, state; and the service's vmh:* keys), the error messages written to EspoCRM, the
  notifications, or the service's HTTP answers. One exception, by design: the service's
  Advoware token cache `vmh:advoware:token:<kanzlei>:<user>` holds the current access token
  (every Motia event is a fresh process, so the token must live in Redis);
- no log line (any level, Motia's console log and the logs it stores for the Workbench)
  carries a name, e-mail address, phone number or birth date; INFO lines carry record ids;
- Motia's Workbench state (motia:*) holds no personal data either; only the snapshots
  (vmh:snap:*, the synced content itself), the copy of notifications sent to EspoCRM
  (vmh:notifications) and conflicts not yet reported (vmh:conflict:pending:*) hold it, by design;
- every ops endpoint refuses requests without the admin token, and compares it in constant time.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import re
import textwrap
import time
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest
import redis

from sandbox import config as cfg
from services.store import keys
from tests.chaos.people import People, clear_faults, service_faults, set_faults
from tests.support.processes import PROJECT_ROOT
from tests.support.stack import Stack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox(demo=False)]
ADMIN = {"Authorization": f"Bearer {cfg.SYNC_ADMIN_TOKEN}"}
TOKEN_CACHE_KEY = keys.advoware_token(cfg.ADVO_KANZLEI, cfg.ADVO_USER)

# Personal data with markers nobody else uses.
PERSON = {
    "beteiligterTyp": "Person",
    "salutationName": "Mrs.",
    "firstName": "Zqxfirst",
    "lastName": "Zqxname",
    "titel": "Dr. Zqxtitel",
    "geburtsdatum": "1971-03-17",
    "emailAddressData": [{"emailAddress": "zq.secret@example.de", "primary": True}],
    "phoneNumberData": [{"phoneNumber": "+49 30 98765432", "type": "Mobile", "primary": True}],
}
COMPANY = {
    "beteiligterTyp": "Firma",
    "name": "Zqxfirma Handels GmbH",
    "rechtsform": "GmbH",
    "handelsregisterNummer": "HRB 97531",
    "registergericht": "Amtsgericht Zqxstadt",
    "emailAddressData": [{"emailAddress": "zq.firma@example.de", "primary": True}],
    "phoneNumberData": [{"phoneNumber": "+49 89 55501234", "type": "Office", "primary": True}],
}
# Digit-only markers are matched between non-digits (a timestamp may contain "97531").
PII = [
    "Zqx",
    "zq.secret@example.de",
    "zq.other@example.de",
    "zq.firma@example.de",
    "98765432",
    "55501234",
    "1971-03-17",
    "17.03.1971",
    "1971-03-18",
    "97531",
]


PII_RE = [re.compile(rf"(?<!\d){re.escape(m)}(?!\d)" if m.isdigit() else re.escape(m)) for m in PII]


@pytest.fixture(scope="module")
def stack(module_stack: Stack) -> Stack:
    """The shared stack with fresh, empty simulators (`sandbox(demo=False)`): its logs and Redis
    hold what every module on it did, so what this module looks for is checked there too."""
    return module_stack


@pytest.fixture(scope="module")
def people(stack: Stack) -> Iterator[People]:
    with closing(People(stack.espo_url, stack.advo_url)) as p:
        yield p


@pytest.fixture(scope="module")
def rdb(stack: Stack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.redis_url, decode_responses=False)
    yield client
    client.close()


def wait_status(people: People, rid: str, *statuses: str, timeout: float = 60) -> dict[str, Any]:
    return wait_until(
        lambda: (r := people.espo_record(rid)).get("syncStatus") in statuses and r.get("betnr") and r,
        timeout=timeout,
        message=f"record {rid} in {statuses}",
    )


def advo_field(people: People, betnr: int, name: str) -> Any:
    return people.advo_records()[betnr].get(name)


def sweep(stack: Stack) -> dict[str, Any]:
    resp = httpx.post(f"{stack.motia_url}/vmh/beteiligte/sync/sweep", headers=ADMIN, timeout=60)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def dump_redis(rdb: Any) -> dict[str, bytes]:
    """Every key with its value(s) as bytes (strings, hashes, lists, sets, zsets, streams)."""
    out: dict[str, bytes] = {}
    for raw_key in rdb.scan_iter(b"*", count=500):
        kind = rdb.type(raw_key).decode()
        parts: list[bytes] = [raw_key]
        if kind == "string":
            parts.append(rdb.get(raw_key) or b"")
        elif kind == "hash":
            parts.extend(k + b"=" + v for k, v in rdb.hgetall(raw_key).items())
        elif kind == "list":
            parts.extend(rdb.lrange(raw_key, 0, -1))
        elif kind == "set":
            parts.extend(rdb.smembers(raw_key))
        elif kind == "zset":
            parts.extend(rdb.zrange(raw_key, 0, -1))
        elif kind == "stream":
            for _, fields in rdb.xrange(raw_key):
                parts.extend(k + b"=" + v for k, v in fields.items())
        out[raw_key.decode("utf-8", "replace")] = b"\n".join(parts)
    return out


def log_entries(text: str) -> list[tuple[str, str]]:
    """Motia's console log as (level, entry) pairs; continuation lines belong to their entry."""
    entries: list[tuple[str, str]] = []
    head = re.compile(r"^\[[^\]]+\] \S+ \[(DEBUG|INFO|WARN|ERROR)\]")
    for line in text.splitlines():
        match = head.match(line)
        if match:
            entries.append((match.group(1), line))
        elif entries:
            entries[-1] = (entries[-1][0], entries[-1][1] + "\n" + line)
        else:
            entries.append(("RAW", line))
    return entries


# --------------------------------------------------------------------------- the flows
@pytest.fixture(scope="module")
def flows(stack: Stack, people: People, rdb: Any) -> dict[str, Any]:
    """Run the flows once; collect every access token the service held on the way."""
    seen_tokens: set[str] = set()
    answers: list[str] = []

    def note_token() -> None:
        raw = rdb.get(TOKEN_CACHE_KEY)
        if raw:
            seen_tokens.add(json.loads(raw)["access_token"])

    person = people.espo_create(PERSON)
    company = people.espo_create(COMPANY)
    betnr = wait_status(people, person, "clean")["betnr"]
    company_betnr = wait_status(people, company, "clean")["betnr"]
    note_token()

    # Edits on both sides, different fields, and a same-field conflict.
    people.espo_edit(
        person,
        {
            "lastName": "Zqxnewname",
            "emailAddressData": [{"emailAddress": "zq.other@example.de", "primary": True}],
        },
    )
    wait_until(lambda: advo_field(people, betnr, "name") == "Zqxnewname", message="EspoCRM edit in Advoware")
    people.advo_edit(company_betnr, {"registergericht": "Amtsgericht Zqxneustadt"})
    people.advo_edit(betnr, {"vorname": "Zqxadvofirst"})
    people.espo_edit(person, {"firstName": "Zqxespofirst"})
    wait_until(lambda: advo_field(people, betnr, "vorname") == "Zqxespofirst", message="conflict resolved")
    sweep(stack)
    wait_until(
        lambda: people.espo_record(company)["registergericht"] == "Amtsgericht Zqxneustadt",
        message="Advoware edit in EspoCRM",
    )

    # Faults: 503 "nicht angemeldet", 500, 429 with Retry-After, a dropped connection, an
    # expired token; then a permanent failure (400) that writes an error message to EspoCRM.
    httpx.post(f"{stack.advo_url}/__sandbox/tokens/expire").raise_for_status()
    set_faults(
        stack.advo_url,
        service_faults("advo", {"kind": "503_nicht_angemeldet", "next_n": 2})
        + service_faults("advo", {"kind": "500", "next_n": 1})
        + service_faults("advo", {"kind": "429", "next_n": 1, "retry_after": 1})
        + service_faults("advo", {"kind": "drop", "next_n": 1}),
    )
    people.espo_edit(person, {"geburtsdatum": "1971-03-18"})
    wait_until(
        lambda: str(advo_field(people, betnr, "geburtsdatum")).startswith("1971-03-18")
        or people.espo_record(person)["syncStatus"] == "failed",
        timeout=60,
        message="edit synced or failed",
    )
    clear_faults(stack.advo_url)
    note_token()
    set_faults(
        stack.advo_url, service_faults("advo", {"kind": "400", "next_n": None, "match": {"method": "PUT"}})
    )
    people.espo_edit(company, {"handelsregisterNummer": "HRB 97532"})
    wait_status(people, company, "permanently_failed", timeout=60)
    clear_faults(stack.advo_url)
    # A 401 from EspoCRM too (the service must not echo its API key anywhere).
    set_faults(
        stack.espo_url, service_faults("espo", {"kind": "401", "next_n": 1, "match": {"method": "GET"}})
    )
    people.espo_edit(person, {"titel": "Prof. Zqxtitel"})
    time.sleep(3)
    clear_faults(stack.espo_url)
    sweep(stack)

    # Refused webhooks carrying personal data, with and without a (wrong) signature.
    for headers in ({}, {"Signature": "eHg6eXk="}, {"X-Signature": "bm9wZQ=="}):
        resp = httpx.post(
            f"{stack.motia_url}/vmh/webhook/beteiligte/update",
            content=json.dumps(
                [{"id": person, "lastName": "Zqxhostile", "emailAddress": "zq.secret@example.de"}]
            ),
            headers={"Content-Type": "application/json", **headers},
        )
        assert resp.status_code == 401
        answers.append(resp.text)

    # A delete in EspoCRM (unlink, notification), and the ops answers.
    other = people.espo_create({**PERSON, "lastName": "Zqxdelete", "emailAddressData": []})
    other_betnr = wait_status(people, other, "clean")["betnr"]
    people.espo_delete(other)
    # Handled: unlinked, and its copies forgotten with it (063c839: the unlink mark too), so the
    # pair's snapshot and betnr index are gone.
    wait_until(
        lambda: not rdb.exists(keys.snapshot(other), keys.betnr_index(other_betnr)), message="unlinked"
    )
    sweep(stack)
    wait_until(
        lambda: str(advo_field(people, betnr, "titel")) == "Prof. Zqxtitel"
        and people.espo_record(person)["syncStatus"] == "clean",
        timeout=60,
        message="person clean again",
    )
    note_token()
    status = httpx.get(f"{stack.motia_url}/vmh/beteiligte/sync/status", headers=ADMIN, timeout=30)
    assert status.status_code == 200
    answers.append(status.text)
    time.sleep(2)  # let the last log lines reach the log file
    return {"ids": [person, company, other], "tokens": seen_tokens, "answers": answers}


def secrets_list(flows: dict[str, Any], people: People) -> dict[str, str]:
    values = {
        "ESPOCRM_API_KEY": cfg.ESPO_API_KEY,
        "ESPOCRM_API_SECRET": cfg.ESPO_API_SECRET,
        "espo human key": cfg.ESPO_HUMAN_KEY,
        "ADVOWARE_API_KEY": cfg.ADVO_API_KEY,
        "ADVOWARE_API_KEY (raw)": cfg.ADVO_API_KEY_BYTES.decode(),
        "ADVOWARE_PASSWORD": cfg.ADVO_PASSWORD,
        "advoware human password": cfg.ADVO_HUMAN_PASSWORD,
        "SYNC_ADMIN_TOKEN": cfg.SYNC_ADMIN_TOKEN,
        **{f"webhook secret {event}": secret for event, (_, secret) in cfg.WEBHOOKS.items()},
        **{f"access token {i}": token for i, token in enumerate(sorted(flows["tokens"]))},
    }
    if people.token:
        values["advoware human token"] = people.token
    return values


# --------------------------------------------------------------------------- checks
def test_flows_produced_the_interesting_cases(flows: dict[str, Any], stack: Stack, people: People) -> None:
    assert flows["tokens"], "the service never cached an Advoware token"
    notes = httpx.get(f"{stack.espo_url}/__sandbox/notes").json()
    texts = json.dumps(notes, ensure_ascii=False)
    assert "Zqxadvofirst" in texts, "the conflict notification names the overwritten value"
    company = people.espo_record(flows["ids"][1])
    assert company["syncStatus"] == "permanently_failed" and company["syncErrorMessage"]


def test_no_secret_in_logs_redis_error_messages_or_answers(
    flows: dict[str, Any], stack: Stack, people: People, rdb: redis.Redis
) -> None:
    places: dict[str, str] = {
        "motia log": stack.log_text("motia"),
        "sandbox log": stack.log_text("sandbox"),
        "EspoCRM records (syncErrorMessage)": json.dumps(
            httpx.get(f"{stack.espo_url}/__sandbox/records").json()
        ),
        "EspoCRM notes/notifications": json.dumps(httpx.get(f"{stack.espo_url}/__sandbox/notes").json()),
        "service answers": "\n".join(flows["answers"]),
    }
    for name, value in dump_redis(rdb).items():
        if name == TOKEN_CACHE_KEY:
            continue  # the token cache: holds the current access token by design
        places[f"redis {name}"] = value.decode("utf-8", "replace")
    assert any(k.startswith("redis motia:logs") for k in places), "Motia's stored logs not found"
    leaks = [
        (label, where)
        for label, secret in secrets_list(flows, people).items()
        for where, text in places.items()
        if secret in text
    ]
    assert not leaks, leaks


def test_no_personal_data_in_logs_and_ids_at_info(
    flows: dict[str, Any], stack: Stack, rdb: redis.Redis
) -> None:
    entries = log_entries(stack.log_text("motia"))
    hits = [(level, m.pattern, entry[:300]) for level, entry in entries for m in PII_RE if m.search(entry)]
    assert not hits, hits
    info = "\n".join(entry for level, entry in entries if level == "INFO")
    for rid in flows["ids"]:
        assert rid in info, f"record id {rid} missing from INFO logs"
    # Motia's Workbench state (logs, traces, queue jobs, state) carries no personal data;
    # neither do the service's keys apart from snapshots and the notification copies.
    dumped = dump_redis(rdb)
    by_design = [
        k
        for k in dumped
        # Values by design, all in the password-protected Redis (README: Redis): snapshots
        # (the last synced content), conflicts not yet reported, copies of notices and the
        # alert texts waiting to be sent (they name the record), the per-record history
        # (old -> new values, shown only through the authenticated ops interfaces) and the
        # identity index (the identity fields of the snapshots and its lookup keys, for the check
        # before a create).
        if k.startswith(
            (
                keys.snapshot(""),
                keys.pending_conflicts(""),
                keys.alert_condition(""),
                keys.history(""),
                keys.IDENTITY_ENTRIES,
                keys.identity_lookup(""),
            )
        )
        or k == keys.NOTIFICATIONS
    ]
    assert by_design, "snapshots expected"
    hits2 = [
        (name, m.pattern)
        for name, value in dumped.items()
        if name not in by_design
        for m in PII_RE
        if m.search(value.decode("utf-8", "replace"))
    ]
    assert not hits2, hits2


# --------------------------------------------------------------------------- ops endpoints
def api_steps() -> list[tuple[str, str, str]]:
    """(file, method, path) of every API step that is not an EspoCRM webhook."""
    found = []
    for path in sorted((PROJECT_ROOT / "steps").rglob("*_step.py")):
        spec = importlib.util.spec_from_file_location(f"_secrets_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        config = module.config
        if config["type"] == "api" and not config["path"].startswith("/vmh/webhook/"):
            found.append((str(path.relative_to(PROJECT_ROOT)), config["method"], config["path"]))
    return found


# The one API step besides the webhooks that answers without credentials (issue 15): a load
# balancer's probe gets 200/503 and `{"healthy": bool}`, nothing else; detail needs the token.
PUBLIC_HEALTH = "/vmh/health"
OPS = [step for step in api_steps() if step[2] != PUBLIC_HEALTH]


def _first_work(handler: ast.AsyncFunctionDef) -> ast.stmt:
    """The handler's first statement that does anything: imports and the `if runtime is None:`
    default (itself only an import) come before the token check without doing work."""
    for stmt in handler.body:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            continue
        if (
            isinstance(stmt, ast.If)
            and ast.unparse(stmt.test) == "runtime is None"
            and all(isinstance(s, ast.Import | ast.ImportFrom) for s in stmt.body)
        ):
            continue
        return stmt
    raise AssertionError("a handler that does nothing")


def test_every_ops_step_checks_the_token_first() -> None:
    """Before any work: `if not is_authorised(...)` in the handler, or the handler's answer is
    `admin_answer(...)`, whose first statement is that check (services/intake/ops_api.py)."""
    from services.intake import auth, ops_api

    assert {p for _, _, p in OPS} >= {"/vmh/beteiligte/sync/status", "/vmh/beteiligte/sync/sweep"}
    for file, _, _ in OPS:
        tree = ast.parse((PROJECT_ROOT / file).read_text())
        handler = next(n for n in tree.body if isinstance(n, ast.AsyncFunctionDef) and n.name == "handler")
        first = ast.unparse(_first_work(handler))
        assert first.startswith(("if not is_authorised(", "return await admin_answer(")), (
            f"{file}: the token check must come first, not {first.splitlines()[0]!r}"
        )
    checker = ast.parse(textwrap.dedent(inspect.getsource(ops_api.admin_answer)))
    body = [s for s in checker.body[0].body if not isinstance(s, ast.Import | ast.ImportFrom | ast.Expr)]  # type: ignore[attr-defined]
    assert ast.unparse(body[0]).startswith("if not is_authorised("), "admin_answer checks the token first"
    assert "hmac.compare_digest" in inspect.getsource(auth.is_authorised)


@pytest.mark.parametrize(("file", "method", "path"), OPS, ids=[p for _, _, p in OPS])
def test_ops_endpoint_refuses_without_the_admin_token(
    stack: Stack, file: str, method: str, path: str
) -> None:
    url = stack.motia_url + re.sub(r":(\w+)", "x", path)
    wrong = [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {cfg.SYNC_ADMIN_TOKEN}x"},
        {"Authorization": f"Bearer {cfg.SYNC_ADMIN_TOKEN[:-1]}"},
        {"Authorization": f"Basic {cfg.SYNC_ADMIN_TOKEN}"},
        {"Authorization": cfg.SYNC_ADMIN_TOKEN},
        {"X-Admin-Token": cfg.SYNC_ADMIN_TOKEN},
    ]
    for headers in wrong:
        resp = httpx.request(
            method,
            url,
            headers=headers,
            params={"token": cfg.SYNC_ADMIN_TOKEN},
            json={"id": "0000000000000000x"} if method != "GET" else None,
            timeout=30,
        )
        assert resp.status_code == 401, (path, headers, resp.status_code, resp.text[:200])
        assert resp.json().get("error") and cfg.SYNC_ADMIN_TOKEN not in resp.text


def test_status_endpoint_accepts_the_admin_token(stack: Stack) -> None:
    resp = httpx.get(f"{stack.motia_url}/vmh/beteiligte/sync/status", headers=ADMIN, timeout=30)
    assert resp.status_code == 200 and "counts" in resp.json()


def test_health_without_the_token_says_only_healthy_or_not(stack: Stack) -> None:
    assert PUBLIC_HEALTH in {p for _, _, p in api_steps()}
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"X-Admin-Token": cfg.SYNC_ADMIN_TOKEN}):
        resp = httpx.get(stack.motia_url + PUBLIC_HEALTH, headers=headers, timeout=60)
        assert resp.status_code in (200, 503), resp.text[:200]
        assert set(resp.json()) == {"healthy"}, resp.text[:300]
        assert resp.json()["healthy"] is (resp.status_code == 200)
    detailed = httpx.get(
        stack.motia_url + PUBLIC_HEALTH,
        headers={"Authorization": f"Bearer {cfg.SYNC_ADMIN_TOKEN}"},
        timeout=60,
    )
    assert set(detailed.json()) > {"healthy"}, detailed.text[:300]
