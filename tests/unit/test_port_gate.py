"""The port gate (scripts/motia-port-gate.mjs) on its own: modes, the Basic login, which
requests pass to a step. Runs the module in node against a real express Router (the one
Motia's core uses), without a server; the end-to-end test probes the running app."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.support import webhook_vectors

ROOT = Path(__file__).resolve().parents[2]
GATE = ROOT / "scripts" / "motia-port-gate.mjs"
CHECK = ROOT / "scripts" / "vmh-webhook-check.mjs"

# Builds a router like Motia's (each handler tagged with its step, as the core patch does) and
# returns the gate's decision (next / status) for each request.
SCRIPT = r"""
import { createPortGate, parseBasicAuth, isProjectStep } from %(gate)s
import express from %(express)s
import { Readable } from 'node:stream'
const project = '/srv/vmh'
const steps = {
  webhook: { filePath: project + '/steps/vmh/webhook_update_step.py', config: { type: 'api', flows: ['vmh'], path: '/vmh/webhook/beteiligte/update' } },
  ops: { filePath: project + '/steps/vmh/ops_step.py', config: { type: 'api', flows: ['vmh'], path: '/vmh/items/:id' } },
  emit: { filePath: project + '/node_modules/@motiadev/core/dist/src/emit.step.ts', config: { type: 'api' } },
  plugin: { filePath: '__plugin_1_GET__x.ts', config: { type: 'api', flows: ['_plugin'] } },
  pluginStep: { filePath: project + '/steps/x_step.py', config: { type: 'api', flows: ['_plugin'] } },
  outside: { filePath: '/tmp/steps/x_step.py', config: { type: 'api', flows: ['vmh'] } },
}
const router = express.Router()
const tag = (step) => { const h = (_q, _s) => {}; h.motiaStep = step; return h }
router.post('/vmh/webhook/beteiligte/update', tag(steps.webhook))
router.get('/vmh/items/:id', tag(steps.ops))
router.post('/emit', tag(steps.emit))
router.get('/__motia/state', tag(steps.plugin))
const basic = (u, p) => 'Basic ' + Buffer.from(u + ':' + p).toString('base64')
// The gate's decision: 'next' or {status, auth}. A webhook request's body is read from the
// request stream, so the decision may come later: resolved on next() or on the answer.
const decide = (env, { method = 'GET', path = '/', headers = {}, local = '127.0.0.1' }) => new Promise((resolve) => {
  const gate = createPortGate({ env, projectDir: project, log: () => {} })
  const res = {
    headers: {},
    setHeader(k, v) { this.headers[k] = v },
    status(code) { this.out = { status: code, auth: this.headers['WWW-Authenticate'] ?? null }; return this },
    json() { resolve(this.out); return this },
  }
  const req = Object.assign(Readable.from([Buffer.from('[]')]), { method, path, headers, socket: { localAddress: local } })
  gate.middleware(() => router)(req, res, () => resolve('next'))
})
const login = { WORKBENCH_USER: 'it', WORKBENCH_PASSWORD: 'a-long-password' }
const result = {
  modes: [login, { WORKBENCH_OPEN_LOCAL: 'true' }, {}, { WORKBENCH_USER: 'it' }].map((e) => createPortGate({ env: e, log: () => {} }).mode),
  projectStep: Object.fromEntries(Object.entries(steps).map(([k, s]) => [k, isProjectStep(s, project)])),
  basic: [parseBasicAuth(basic('a', 'b:c')), parseBasicAuth('Bearer x'), parseBasicAuth('Basic ' + Buffer.from('nocolon').toString('base64'))],
  login: {
    webhookNoAuth: decide(login, { method: 'POST', path: '/vmh/webhook/beteiligte/update' }),
    webhookWrongMethod: decide(login, { method: 'GET', path: '/vmh/webhook/beteiligte/update' }),
    paramRoute: decide(login, { path: '/vmh/items/42' }),
    workbench: decide(login, { path: '/' }),
    workbenchLogin: decide(login, { path: '/', headers: { authorization: basic('it', 'a-long-password') } }),
    wrongPassword: decide(login, { path: '/', headers: { authorization: basic('it', 'a-long-passworx') } }),
    wrongUser: decide(login, { path: '/', headers: { authorization: basic('IT', 'a-long-password') } }),
    emit: decide(login, { method: 'POST', path: '/emit' }),
    emitLogin: decide(login, { method: 'POST', path: '/emit', headers: { authorization: basic('it', 'a-long-password') } }),
    plugin: decide(login, { path: '/__motia/state' }),
    badPath: decide(login, { path: '/vmh/items/%%E0%%A4%%A' }),
  },
  crossSite: {
    fetchMetadata: decide(login, { method: 'POST', path: '/emit', headers: { authorization: basic('it', 'a-long-password'), 'sec-fetch-site': 'cross-site' } }),
    sameSite: decide(login, { method: 'POST', path: '/emit', headers: { authorization: basic('it', 'a-long-password'), 'sec-fetch-site': 'same-site' } }),
    foreignOrigin: decide(login, { method: 'POST', path: '/emit', headers: { authorization: basic('it', 'a-long-password'), origin: 'https://evil.example', host: 'sync.lan' } }),
    nullOrigin: decide(login, { method: 'POST', path: '/emit', headers: { authorization: basic('it', 'a-long-password'), origin: 'null', host: 'sync.lan' } }),
    ownOrigin: decide(login, { method: 'POST', path: '/emit', headers: { authorization: basic('it', 'a-long-password'), origin: 'https://sync.lan', host: 'sync.lan', 'sec-fetch-site': 'same-origin' } }),
    followedLink: decide(login, { path: '/', headers: { authorization: basic('it', 'a-long-password'), 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' } }),
    openLocal: decide({ WORKBENCH_OPEN_LOCAL: 'true' }, { method: 'POST', path: '/emit', headers: { 'sec-fetch-site': 'cross-site' } }),
    webhook: decide(login, { method: 'POST', path: '/vmh/webhook/beteiligte/update', headers: { 'sec-fetch-site': 'cross-site' } }),
    upgrade: createPortGate({ env: login, log: () => {} }).upgradeRefusal({ method: 'GET', headers: { authorization: basic('it', 'a-long-password'), origin: 'https://evil.example', host: 'sync.lan' }, socket: {} })?.code ?? null,
  },
  openLocal: {
    loopback: decide({ WORKBENCH_OPEN_LOCAL: 'true' }, { path: '/' }),
    lan: decide({ WORKBENCH_OPEN_LOCAL: 'true' }, { path: '/', local: '192.168.1.5' }),
    webhookLan: decide({ WORKBENCH_OPEN_LOCAL: 'true' }, { method: 'POST', path: '/vmh/webhook/beteiligte/update', local: '192.168.1.5' }),
  },
  off: {
    workbench: decide({}, { path: '/' }),
    basicIgnored: decide({}, { path: '/', headers: { authorization: basic('', '') } }),
    webhook: decide({}, { method: 'POST', path: '/vmh/webhook/beteiligte/update' }),
  },
  upgrade: {
    login: createPortGate({ env: login, log: () => {} }).upgradeRefusal({ headers: {}, socket: {} })?.code ?? null,
    loginOk: createPortGate({ env: login, log: () => {} }).upgradeRefusal({ headers: { authorization: basic('it', 'a-long-password') }, socket: {} }),
    off: createPortGate({ env: {}, log: () => {} }).upgradeRefusal({ headers: {}, socket: { localAddress: '127.0.0.1' } })?.code ?? null,
  },
}
// Every decision is a promise: settle them all, keeping the shape.
const settle = async (value) => {
  if (value instanceof Promise) return settle(await value)
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    return Object.fromEntries(await Promise.all(Object.entries(value).map(async ([k, v]) => [k, await settle(v)])))
  }
  return value
}
console.log(JSON.stringify(await settle(result)))
"""


def _run_gate_script(tmp_path: Path) -> dict[str, object]:
    node = shutil.which("node")
    assert node, "node not installed"
    express = (ROOT / "node_modules" / "express" / "index.js").as_uri()
    script = tmp_path / "gate_check.mjs"
    script.write_text(SCRIPT % {"gate": json.dumps(GATE.as_uri()), "express": json.dumps(express)})
    proc = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_gate_decisions(tmp_path: Path) -> None:
    r = _run_gate_script(tmp_path)
    # Login needs both variables; one alone is "off", never open.
    assert r["modes"] == ["login", "open-local", "off", "off"]
    # Only the project's own step files count: not Motia's /emit, not plugins, not elsewhere.
    assert r["projectStep"] == {
        "webhook": True,
        "ops": True,
        "emit": False,
        "plugin": False,
        "pluginStep": False,
        "outside": False,
    }
    assert r["basic"] == [{"user": "a", "password": "b:c"}, None, None]
    unsigned = {"status": 401, "auth": None}
    refused = {"status": 401, "auth": 'Basic realm="Motia Workbench (vmh Beteiligte sync)", charset="UTF-8"'}
    assert r["login"] == {
        "webhookNoAuth": unsigned,  # refused by the gate's own signature check, no step runs
        "webhookWrongMethod": refused,
        "paramRoute": "next",
        "workbench": refused,
        "workbenchLogin": "next",
        "wrongPassword": refused,
        "wrongUser": refused,
        "emit": refused,
        "emitLogin": "next",
        "plugin": refused,
        "badPath": refused,
    }
    not_here = {"status": 404, "auth": None}
    assert r["openLocal"] == {"loopback": "next", "lan": not_here, "webhookLan": unsigned}
    assert r["off"] == {"workbench": not_here, "basicIgnored": not_here, "webhook": unsigned}
    assert r["upgrade"] == {"login": 401, "loginOk": None, "off": 404}
    # Cached Basic credentials ride along with any request a browser sends to the host: a web
    # page of another site must not use them (CSRF on /emit, hijacked log streams).
    forbidden = {"status": 403, "auth": None}
    assert r["crossSite"] == {
        "fetchMetadata": forbidden,
        "sameSite": forbidden,
        "foreignOrigin": forbidden,
        "nullOrigin": forbidden,
        "ownOrigin": "next",
        "followedLink": "next",
        "openLocal": forbidden,
        "webhook": unsigned,  # server-to-server: judged by its signature, not by the site
        "upgrade": 403,
    }


# --------------------------------------------------------------------------- the webhook check
# The gate's checkWebhook (scripts/vmh-webhook-check.mjs) against the vector file the Python intake is tested with
# (tests/unit/test_webhook_vectors.py): same status, same error text, same ids.
VECTOR_SCRIPT = r"""
import { checkWebhook, parseWebhookSecrets } from %(check)s
import { readFileSync } from 'node:fs'
const vectors = JSON.parse(readFileSync(%(vectors)s, 'utf8'))
const secrets = parseWebhookSecrets(vectors.secrets)
const body = (c) => c.body_hex !== undefined ? Buffer.from(c.body_hex, 'hex')
  : c.body_fill ? Buffer.from(c.body_fill.prefix + c.body_fill.text.repeat(c.body_fill.times) + c.body_fill.suffix, 'utf8')
  : Buffer.from(c.body, 'utf8')
const answers = vectors.cases.map((c) => {
  const v = checkWebhook(body(c), c.headers, secrets)
  const ids = v.status === 200 ? [...new Set(v.items.map((i) => i.id))] : null
  return { name: c.name, status: v.status, error: v.error ?? null, ids }
})
console.log(JSON.stringify(answers))
"""


def _node_json(tmp_path: Path, name: str, source: str) -> Any:
    node = shutil.which("node")
    assert node, "node not installed"
    script = tmp_path / name
    script.write_text(source)
    proc = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_gate_answers_each_webhook_vector_as_the_python_intake_does(tmp_path: Path) -> None:
    vectors = webhook_vectors.load()
    source = VECTOR_SCRIPT % {
        "check": json.dumps(CHECK.as_uri()),
        "vectors": json.dumps(str(webhook_vectors.VECTORS_FILE)),
    }
    answers = _node_json(tmp_path, "vectors.mjs", source)
    assert len(answers) == len(vectors["cases"])
    mismatches = [
        (case["name"], got)
        for case, got in zip(vectors["cases"], answers, strict=True)
        if {k: got[k] for k in ("status", "error", "ids")} != webhook_vectors.expected(case)
    ]
    assert mismatches == []


# The middleware on a webhook route: reads the body itself, answers a refusal at once, and hands a
# request that passes on with its body parsed (so the body parsers skip it) and the raw text kept.
MIDDLEWARE_SCRIPT = r"""
import { createPortGate } from %(gate)s
import express from %(express)s
import { Readable } from 'node:stream'
import { createHmac } from 'node:crypto'
const project = '/srv/vmh'
const step = { filePath: project + '/steps/vmh/webhook_update_step.py', config: { type: 'api', flows: ['vmh'], path: '/vmh/webhook/beteiligte/update' } }
const router = express.Router()
const h = () => {}; h.motiaStep = step
router.post('/vmh/webhook/beteiligte/update', h)
const SECRET = 'a-webhook-secret-0001'
const env = { ESPOCRM_WEBHOOK_SECRETS: 'wh1:' + SECRET }
const sign = (raw, secret = SECRET) => Buffer.from('wh1:' + createHmac('sha256', secret).update(raw).digest('hex')).toString('base64')
const run = (gate, { chunks, headers, source = '10.0.0.1' }) => new Promise((resolve) => {
  let read = 0
  const stream = new Readable({ read() { const c = chunks.shift(); if (c) read += c.length; this.push(c ?? null) } })
  const req = Object.assign(stream, { method: 'POST', path: '/vmh/webhook/beteiligte/update', headers, socket: { localAddress: '127.0.0.1', remoteAddress: source } })
  const res = {
    headers: {},
    setHeader(k, v) { this.headers[k] = v },
    status(code) { this.code = code; return this },
    json(body) { resolve({ status: this.code, body, headers: this.headers, read }); return this },
  }
  gate.middleware(() => router)(req, res, () => resolve({ next: true, body: req.body, rawBody: req.rawBody, parsed: req._body, read }))
})
const timed = async (gate, request) => { const t0 = performance.now(); const out = await run(gate, request); return { ...out, ms: performance.now() - t0 } }
const lines = []
const gate = createPortGate({ env, projectDir: project, log: (l) => lines.push(l) })
const raw = '[{"id":"a1","name":"M\\u00fcller"}]'
const json = { 'content-type': 'application/json' }
const big = Buffer.alloc(400_000, 0x20)
const result = {
  signed: await run(gate, { chunks: [Buffer.from(raw.slice(0, 7)), Buffer.from(raw.slice(7))], headers: { ...json, signature: sign(raw) } }),
  unsigned: await run(gate, { chunks: [Buffer.from(raw)], headers: json }),
  wrongSecret: await run(gate, { chunks: [Buffer.from(raw)], headers: { ...json, signature: sign(raw, 'other') } }),
  declaredTooLarge: await run(gate, { chunks: [big, big, big], headers: { ...json, 'content-length': '1200000' } }),
  streamedTooLarge: await run(gate, { chunks: Array(10).fill(big), headers: json }),
  textPlain: await run(gate, { chunks: [Buffer.from(raw)], headers: { 'content-type': 'text/plain', signature: sign(raw) } }),
  notAnArray: await run(gate, { chunks: [Buffer.from('{}')], headers: { ...json, signature: sign('{}') } }),
}
// One source refused over and over: the first REFUSAL_BURST at once, then each one held for
// the tarpit (shortened here) and still a 401; signed requests and other sources never wait.
// The throttle's clock stands still: no token comes back during the flood, however long the
// 60 requests take (on a busy machine the bucket refilled and 42 went at once).
const floodLines = []
// Held answers wait 200 ms and the cut is at half of that: a timer may fire a millisecond early,
// and an answer given at once may take tens of ms on a busy machine (41 of 40 'at once' was seen).
const flooded = createPortGate({ env, projectDir: project, log: (l) => floodLines.push(l), tarpitMs: 200, throttle: { perSecond: 1, now: () => 0 } })
const answers = []
for (let i = 0; i < 60; i++) answers.push(await timed(flooded, { chunks: [Buffer.from(raw)], headers: json, source: '10.6.6.6' }))
result.flood = {
  statuses: [...new Set(answers.map((a) => a.status))],
  atOnce: answers.filter((a) => a.ms < 100).length,
  held: answers.filter((a) => a.ms >= 100).length,
  heldAtLeast: Math.min(...answers.filter((a) => a.ms >= 100).map((a) => a.ms)),
  signedSameSource: await timed(flooded, { chunks: [Buffer.from(raw)], headers: { ...json, signature: sign(raw) }, source: '10.6.6.6' }),
  otherSource: await timed(flooded, { chunks: [Buffer.from(raw)], headers: json, source: '10.7.7.7' }),
}
result.refusalLines = [lines, floodLines].map((ls) => ls.filter((l) => l.includes('refused')).length)
const noSecrets = createPortGate({ env: {}, projectDir: project, log: () => {} })
result.noSecrets = await run(noSecrets, { chunks: [Buffer.from(raw)], headers: { ...json, signature: sign(raw) } })
result.noSecretsProblem = noSecrets.secretsProblem
result.invalidProblem = createPortGate({ env: { ESPOCRM_WEBHOOK_SECRETS: 'only-a-' + SECRET }, projectDir: project }).secretsProblem
result.secretInAnyLine = [...lines, ...floodLines, result.invalidProblem].some((l) => l.includes(SECRET))
result.problemWithSecrets = gate.secretsProblem
console.log(JSON.stringify(result))
"""


def test_webhook_route_is_judged_in_the_gate(tmp_path: Path) -> None:
    express = (ROOT / "node_modules" / "express" / "index.js").as_uri()
    r = _node_json(
        tmp_path,
        "middleware.mjs",
        MIDDLEWARE_SCRIPT % {"gate": json.dumps(GATE.as_uri()), "express": json.dumps(express)},
    )
    raw = '[{"id":"a1","name":"M\\u00fcller"}]'
    assert r["signed"] == {
        "next": True,
        "body": [{"id": "a1", "name": "Müller"}],
        "rawBody": raw,
        "parsed": True,
        "read": len(raw),
    }
    missing = {"error": "signature rejected: missing signature"}
    assert {k: r["unsigned"][k] for k in ("status", "body")} == {"status": 401, "body": missing}
    assert r["wrongSecret"]["body"] == {"error": "signature rejected: signature mismatch"}
    too_large = {"error": "body larger than 1000000 bytes"}
    # Declared too large: answered without reading a byte; streamed: reading stops at the limit.
    assert r["declaredTooLarge"] == {
        "status": 413,
        "body": too_large,
        "headers": {"Connection": "close"},
        "read": 0,
    }
    assert r["streamedTooLarge"]["status"] == 413 and r["streamedTooLarge"]["body"] == too_large
    assert r["streamedTooLarge"]["read"] < 2_000_000  # of 4 MB sent
    assert r["textPlain"]["status"] == 415
    assert r["notAnArray"]["body"] == {"error": "body must be a JSON array of records"}
    # A flood from one source: refused at once up to the burst, then held (still 401, never 429);
    # a signed request from that source and a request from another one are not held.
    flood = r["flood"]
    assert flood["statuses"] == [401]
    assert flood["atOnce"] == 40 and flood["held"] == 20 and flood["heldAtLeast"] >= 195, flood
    assert flood["signedSameSource"]["next"] is True and flood["signedSameSource"]["ms"] < 50
    assert flood["otherSource"]["status"] == 401 and flood["otherSource"]["ms"] < 50
    # A flood is one log line (the first refusal), not one per request; no secret is ever logged.
    assert r["refusalLines"] == [1, 1]
    assert r["secretInAnyLine"] is False
    # Without (valid) secrets in the environment nothing passes; the start says so.
    assert r["noSecrets"]["body"] == {"error": "signature rejected: unknown webhook id"}
    assert "ESPOCRM_WEBHOOK_SECRETS is not in the environment" in r["noSecretsProblem"]
    assert r["invalidProblem"].startswith("ESPOCRM_WEBHOOK_SECRETS is invalid")
    assert r["problemWithSecrets"] is None
