"""The one public port of `make serve` (issue 14): default deny, checked against the running app.

The routes come from the app itself (MOTIA_ROUTE_TABLE_FILE: Motia's express stack with its
API-step router, the plugins' routes and the Workbench's middleware, written once it listens),
not from a list here. Without credentials every one is refused (401/403/404) except the three
signed EspoCRM webhooks (and the health probe's bare 200/503); the ops API works with its token,
the Workbench with its login, and `POST /emit` without a login emits nothing (seen in Redis).

Issue 21: a webhook request that fails the intake's checks is answered by the gate itself, with
the Python intake's answer, and no step process starts (the intake's "webhook refused" log line
never appears); under a short flood of unsigned requests a real edit still syncs within 2 s (the
30 s flood is bench figure 8).
"""

from __future__ import annotations

import base64
import json
import re
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from sandbox.act import Actor
from sandbox.signing import webhook_signature
from services.environment import parse_webhook_secrets
from services.intake.webhook import parse_and_verify
from tests.e2e.conftest import Served, signed_update_batch
from tests.support.flood import Flood, edit_seconds, linked_person
from tests.support.processes import PROJECT_ROOT, listening_ports
from tests.support.stack import Stack, read_dotenv, run_stack, wait_until

pytestmark = pytest.mark.e2e

WEBHOOKS = {f"POST /vmh/webhook/beteiligte/{e}" for e in ("create", "update", "delete")}
HEALTH = "GET /vmh/health"  # 200/503 and {"healthy": bool} only; the detail needs the token
SANDBOX = read_dotenv(PROJECT_ROOT / "sandbox" / "sandbox.env")
ADMIN = {"Authorization": f"Bearer {SANDBOX['SYNC_ADMIN_TOKEN']}"}
GATE_REFUSED = {401, 403, 404}
# The Workbench's middleware (Vite, SPA fallback) has no route list: these stand for it, with
# every asset the Workbench page itself references (test_workbench_assets_need_the_login).
# What the Python intake logs for every request it refuses, and for every batch it accepts.
REFUSED_LINE, ACCEPTED_LINE = "webhook refused", "webhook accepted"
MIDDLEWARE_PROBES = ["/", "/index.html", "/src/main.tsx", "/@vite/client", "/icon.png", "/no/such/page"]


def concrete(path: str) -> str:
    """A request path for an express route pattern (`:id` -> x, `*` -> x)."""
    return "/" + re.sub(r":\w+", "x", path).replace("*", "x").lstrip("/")


def routes(served: Served, *, project: bool | None = None) -> list[dict[str, Any]]:
    found = [r for r in served.route_table if r["kind"] == "route"]
    return [r for r in found if project is None or r["projectStep"] is project]


def key(route: dict[str, Any]) -> str:
    return f"{route['method']} {route['path']}"


def send(served: Served, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, served.stack.motia_url + path, timeout=60, **kw)


def test_serve_with_the_workbench_opens_one_port_only(served: Served) -> None:
    # No Vite HMR server on PORT + 21678 (or Vite's default 24678): the streams share PORT.
    assert listening_ports(served.stack.procs["motia"].pid) == {served.stack.motia_port}


def test_route_table_comes_from_the_running_app(served: Served) -> None:
    table = {key(r): r for r in routes(served)}
    project = {key(r) for r in routes(served, project=True)}
    # Every project API step (steps/**/*_step.py) is in the step router, nothing else is "project".
    assert WEBHOOKS <= project and "GET /vmh/beteiligte/sync/status" in project
    assert all(k.split(" ", 1)[1].startswith("/vmh/") for k in project), project
    # Motia's own and the plugins' routes are there, and are not treated as steps of ours.
    assert table["POST /emit"]["projectStep"] is False
    plugin = [k for k in table if " /__motia/" in k]
    assert len(plugin) >= 10 and not any(table[k]["projectStep"] for k in plugin), plugin
    assert any(r["kind"] == "middleware" for r in served.route_table)  # the Workbench (Vite)
    assert "[port-gate] Workbench, streams" in served.stack.log_text("motia")


def test_every_route_without_credentials_is_refused_except_the_webhooks(served: Served) -> None:
    seen = []
    for route in routes(served):
        method, path = route["method"], concrete(route["path"])
        body = {"content": b"[]", "headers": {"Content-Type": "application/json"}} if method != "GET" else {}
        resp = send(served, method, path, **body)
        seen.append((key(route), resp.status_code))
        if key(route) in WEBHOOKS:
            # Reached the step, which refuses the missing signature itself.
            assert resp.status_code == 401 and "signature" in resp.json()["error"], (route, resp.text)
        elif key(route) == HEALTH:
            assert resp.status_code in (200, 503) and set(resp.json()) == {"healthy"}, resp.text
        else:
            assert resp.status_code in GATE_REFUSED, (route, resp.status_code, resp.text[:200])
    for path in [*MIDDLEWARE_PROBES, f"/@fs{PROJECT_ROOT}/package.json"]:
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"):
            resp = send(served, method, path)
            seen.append((f"{method} {path}", resp.status_code))
            assert resp.status_code in GATE_REFUSED, (method, path, resp.status_code)
    assert len(seen) > 40


def test_signed_webhook_needs_nothing_else(served: Served) -> None:
    raw, headers = signed_update_batch("gate-")
    resp = send(served, "POST", "/vmh/webhook/beteiligte/update", content=raw, headers=headers)
    assert resp.status_code == 200 and resp.json()["accepted"] == 1, resp.text


def test_every_ops_route_refuses_without_its_token_and_works_with_it(served: Served) -> None:
    ops = [r for r in routes(served, project=True) if key(r) not in WEBHOOKS]
    assert len(ops) >= 5
    for route in ops:
        method, path = route["method"], concrete(route["path"])
        body: dict[str, Any] = {"json": {}} if method != "GET" else {}
        wrong = send(served, method, path, headers={"Authorization": "Bearer wrong"}, **body)
        login = send(served, method, path, auth=served.login, **body)  # the Workbench login is not the token
        if key(route) == HEALTH:
            assert set(wrong.json()) == {"healthy"} and set(login.json()) == {"healthy"}
        else:
            assert wrong.status_code == 401 and login.status_code == 401, (route, wrong.text, login.text)
        ok = send(served, method, path, headers=ADMIN, **body)
        # With the token the step does its work (a POST without an id may be a 400 with a reason).
        assert ok.status_code not in (401, 403) and ok.status_code < 500, (route, ok.status_code, ok.text)


def test_workbench_and_its_routes_work_with_the_login(served: Served) -> None:
    page = send(served, "GET", "/", auth=served.login)
    assert page.status_code == 200 and '<div id="root">' in page.text
    queues = send(served, "GET", "/__motia/bullmq/queues", auth=served.login)
    assert queues.status_code == 200 and "queues" in queues.json()
    wrong = send(served, "GET", "/", auth=(served.login[0], served.login[1] + "x"))
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Basic ")


def test_workbench_assets_need_the_login(served: Served) -> None:
    html = send(served, "GET", "/", auth=served.login).text
    assets = sorted(set(re.findall(r'(?:src|href)="(/[^"]+)"', html)))
    assert "/@vite/client" in assets and "/src/main.tsx" in assets
    for asset in assets:
        assert send(served, "GET", asset, auth=served.login).status_code == 200, asset
        assert send(served, "GET", asset).status_code == 401, asset


def _upgrade_status(served: Served, authorization: str | None, origin: str | None = None) -> str:
    request = (
        "GET / HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{served.stack.motia_port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        + (f"Authorization: {authorization}\r\n" if authorization else "")
        + (f"Origin: {origin}\r\n" if origin else "")
        + "\r\n"
    )
    with socket.create_connection(("127.0.0.1", served.stack.motia_port), timeout=30) as sock:
        sock.sendall(request.encode())
        return sock.recv(4096).decode(errors="replace").split("\r\n", 1)[0]


def test_stream_websocket_needs_the_login(served: Served) -> None:
    assert " 401 " in _upgrade_status(served, None)
    assert " 401 " in _upgrade_status(served, "Basic " + base64.b64encode(b"kanzlei-it:wrong").decode())
    good = "Basic " + base64.b64encode(":".join(served.login).encode()).decode()
    assert " 101 " in _upgrade_status(served, good)
    assert " 101 " in _upgrade_status(served, good, origin=served.stack.motia_url)
    # A page of another site in a logged-in browser must not read the streams (hijacking).
    assert " 403 " in _upgrade_status(served, good, origin="https://evil.example")


def _redis_mentions(r: Any, marker: str) -> list[str]:
    """Keys whose name or content mentions `marker` (jobs, traces, logs, state: everything).
    `r` is a sync redis.Redis (its stubs type results as Awaitable | T)."""
    hits = []
    content: list[bytes]
    for name in r.scan_iter(count=1000):
        kind = r.type(name)
        if kind == b"string":
            content = [r.get(name) or b""]
        elif kind == b"hash":
            content = list(r.hgetall(name).values())
        elif kind == b"list":
            content = r.lrange(name, 0, -1)
        elif kind in (b"set", b"zset"):
            content = list(r.smembers(name)) if kind == b"set" else r.zrange(name, 0, -1)
        elif kind == b"stream":
            content = [
                json.dumps({k.decode(): v.decode(errors="replace") for k, v in f.items()}).encode()
                for _, f in r.xrange(name)
            ]
        else:
            content = []
        if marker.encode() in name or any(marker.encode() in c for c in content):
            hits.append(name.decode(errors="replace"))
    return hits


def test_emit_without_login_emits_nothing(served: Served) -> None:
    r = redis.Redis.from_url(served.stack.redis_url)
    probe, control = "gate-probe-" + uuid.uuid4().hex, "gate-control-" + uuid.uuid4().hex
    event: dict[str, Any] = {
        "topic": "vmh.beteiligte.sync_check",
        "data": {"ids": [probe], "trigger": "sync_check"},
    }
    refused = send(served, "POST", "/emit", json=event)
    assert refused.status_code == 401
    # Nor from another site's page in a logged-in browser (the credentials would ride along).
    forged = send(
        served, "POST", "/emit", json=event, auth=served.login, headers={"Origin": "https://evil.example"}
    )
    assert forged.status_code == 403
    # The control: the same emit with the login does reach Redis, so the check below can see one.
    event["data"]["ids"] = [control]
    assert send(served, "POST", "/emit", json=event, auth=served.login).status_code == 200
    wait_until(lambda: _redis_mentions(r, control), timeout=60, message="the logged-in emit in Redis")
    assert _redis_mentions(r, probe) == []


def _refused_requests() -> list[tuple[str, bytes, dict[str, str]]]:
    """Requests the intake refuses, one per answer and reason (headers as a sender sends them)."""
    secrets = parse_webhook_secrets(SANDBOX["ESPOCRM_WEBHOOK_SECRETS"])
    webhook_id, secret = next((i, s) for i, s in secrets.items() if "update" in s)
    json_type = {"Content-Type": "application/json"}

    def signed(raw: bytes, content_type: str = "application/json") -> dict[str, str]:
        return {"Content-Type": content_type, "Signature": webhook_signature(webhook_id, secret, raw)}

    one = b'[{"id":"gate00000000000a1"}]'
    many = json.dumps([{"id": f"gate{n:013x}"} for n in range(51)]).encode()
    huge = b'[{"id":"a1","x":"' + b"x" * 1_000_100 + b'"}]'
    unknown_id = webhook_signature("6650a1b2c3d4e5f99", secret, one)
    return [
        ("unsigned", one, json_type),
        ("wrong secret", one, {**json_type, "Signature": webhook_signature(webhook_id, "x" + secret, one)}),
        ("unknown webhook id", one, {**json_type, "Signature": unknown_id}),
        ("garbage legacy header", one, {**json_type, "X-Signature": "AAAA"}),
        ("over 1 MB", huge, signed(huge)),
        ("signed text/plain", one, signed(one, "text/plain")),
        ("signed, not an array", b'{"id":"a1"}', signed(b'{"id":"a1"}')),
        ("signed, 51 items", many, signed(many)),
        ("signed, invalid id", b'[{"id":"a b"}]', signed(b'[{"id":"a b"}]')),
    ]


def test_refused_webhooks_get_the_intakes_answer_and_start_no_step(served: Served) -> None:
    log = served.stack.log_text
    secrets = parse_webhook_secrets(SANDBOX["ESPOCRM_WEBHOOK_SECRETS"])
    refused_before, accepted_before = log("motia").count(REFUSED_LINE), log("motia").count(ACCEPTED_LINE)
    for name, raw, headers in _refused_requests():
        resp = send(served, "POST", "/vmh/webhook/beteiligte/update", content=raw, headers=headers)
        intake = parse_and_verify("update", raw, {k.lower(): v for k, v in headers.items()}, secrets)
        assert intake.status != 200, name
        assert (resp.status_code, resp.json()) == (intake.status, intake.body), name
    # The control: a signed batch does reach the step, whose log line shows up in this log.
    raw, headers = signed_update_batch("gate-")
    accepted = send(served, "POST", "/vmh/webhook/beteiligte/update", content=raw, headers=headers)
    assert accepted.status_code == 200, accepted.text
    wait_until(lambda: log("motia").count(ACCEPTED_LINE) > accepted_before, timeout=30, message="accepted")
    assert log("motia").count(REFUSED_LINE) == refused_before  # no step ran for any refused request
    assert "[port-gate] webhook requests refused before any step ran" in log("motia")


@pytest.fixture(scope="module")
def served_bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`make serve` without a Workbench login, so without the Workbench (the port gate the same):
    the flood test's own stack, with no Workbench bundling its UI (10-20 s of CPU at its first
    start) beside a measurement of seconds."""
    with run_stack(
        tmp_path_factory.mktemp("served-bare"),
        extra_env={"WORKBENCH_USER": "", "WORKBENCH_PASSWORD": ""},
        command=["bash", "scripts/serve.sh"],
        sandbox_args=["--no-demo"],
        workbench=True,  # serve.sh decides, by the login: none here
    ) as s:
        yield s


@pytest.mark.alone  # its bound is a time: next to the parallel stacks the CPU wait alone exceeds it
def test_unsigned_flood_is_refused_and_a_real_edit_still_syncs_in_2_seconds(served_bare: Stack) -> None:
    """The short, bounded load test (loopback only): 10 s of unsigned requests, 20 in flight; a
    person's edit 3 s in reaches Advoware within 2 s, while the flood still runs. On a machine that
    is busy anyway (the suite's other stacks, other users) an edit alone already takes longer and
    varies by half either way: then the bound is twice the slower of two edits without the flood,
    measured right before. The old intake answered none of the flood in time (each request a
    Python process) and took 7 times as long for the edit on a quiet machine."""
    actor = Actor(served_bare.espo_url, served_bare.advo_url)
    rid, betnr = linked_person(actor, "Floodgate")
    quiet = [edit_seconds(actor, rid, betnr, f"Dr. Ruhe {n}", timeout=30) for n in range(2)]
    assert None not in quiet, quiet
    slowest_quiet = max(q for q in quiet if q is not None)
    refused_before = served_bare.log_text("motia").count(REFUSED_LINE)
    flood = Flood(served_bare.motia_url, seconds=10, in_flight=20)
    time.sleep(3)
    seconds = edit_seconds(actor, rid, betnr, "Dr. Flut", timeout=30)
    still_flooding = flood.proc.poll() is None
    figures = flood.result()
    assert figures["errors"] == 0 and figures["statuses"] == {"401": figures["answered"]}, figures
    # Beyond its burst the flooding source waits 1 s per answer: about 20 answers a second.
    assert 20 <= figures["per_second"] < 100, figures
    assert served_bare.log_text("motia").count(REFUSED_LINE) == refused_before  # no step started
    assert still_flooding, ("the edit outlasted the flood", seconds, figures)
    assert seconds is not None and seconds < max(2.0, 2 * slowest_quiet), (seconds, quiet, figures)
