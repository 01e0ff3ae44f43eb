"""The port gate (scripts/motia-port-gate.mjs) on its own: modes, the Basic login, which
requests pass to a step. Runs the module in node against a real express Router (the one
Motia's core uses), without a server; the end-to-end test probes the running app."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GATE = ROOT / "scripts" / "motia-port-gate.mjs"

# Builds a router like Motia's (each handler tagged with its step, as the core patch does) and
# returns the gate's decision (next / status) for each request.
SCRIPT = r"""
import { createPortGate, parseBasicAuth, isProjectStep } from %(gate)s
import express from %(express)s
const project = '/srv/vmh'
const steps = {
  webhook: { filePath: project + '/steps/vmh/webhook_update_step.py', config: { type: 'api', flows: ['vmh'] } },
  emit: { filePath: project + '/node_modules/@motiadev/core/dist/src/emit.step.ts', config: { type: 'api' } },
  plugin: { filePath: '__plugin_1_GET__x.ts', config: { type: 'api', flows: ['_plugin'] } },
  pluginStep: { filePath: project + '/steps/x_step.py', config: { type: 'api', flows: ['_plugin'] } },
  outside: { filePath: '/tmp/steps/x_step.py', config: { type: 'api', flows: ['vmh'] } },
}
const router = express.Router()
const tag = (step) => { const h = (_q, _s) => {}; h.motiaStep = step; return h }
router.post('/vmh/webhook/beteiligte/update', tag(steps.webhook))
router.get('/vmh/items/:id', tag(steps.webhook))
router.post('/emit', tag(steps.emit))
router.get('/__motia/state', tag(steps.plugin))
const basic = (u, p) => 'Basic ' + Buffer.from(u + ':' + p).toString('base64')
const decide = (env, { method = 'GET', path = '/', headers = {}, local = '127.0.0.1' }) => {
  const gate = createPortGate({ env, projectDir: project, log: () => {} })
  let out = null
  const res = {
    headers: {},
    setHeader(k, v) { this.headers[k] = v },
    status(code) { out = { status: code, auth: this.headers['WWW-Authenticate'] ?? null }; return this },
    json() { return this },
  }
  gate.middleware(() => router)({ method, path, headers, socket: { localAddress: local } }, res, () => { out = 'next' })
  return out
}
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
console.log(JSON.stringify(result))
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
        "emit": False,
        "plugin": False,
        "pluginStep": False,
        "outside": False,
    }
    assert r["basic"] == [{"user": "a", "password": "b:c"}, None, None]
    refused = {"status": 401, "auth": 'Basic realm="Motia Workbench (vmh Beteiligte sync)", charset="UTF-8"'}
    assert r["login"] == {
        "webhookNoAuth": "next",  # the step checks the signature
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
    assert r["openLocal"] == {"loopback": "next", "lan": not_here, "webhookLan": "next"}
    assert r["off"] == {"workbench": not_here, "basicIgnored": not_here, "webhook": "next"}
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
        "webhook": "next",  # server-to-server; the step checks the signature
        "upgrade": 403,
    }
