// Idempotent patches to @motiadev/core 0.17.4-beta.185 (dist/src/server.mjs), applied at
// install time (npm postinstall and `make install`). Each patch is an exact string
// replacement; a missing pattern (Motia upgraded) fails loudly instead of silently.
//
// 1. stream-wrapper: the per-execution slowdown bug. The stream wrapper mutated the
//    *shared* adapter returned by stream() on every step execution, stacking one wrapper
//    per call. Wrapping a fresh prototype-linked object leaves the adapter untouched.
// 2. body-limit: Motia accepts request bodies up to 1 GB. A webhook endpoint facing the
//    network must refuse huge bodies early: the limit becomes MOTIA_BODY_LIMIT (default 1mb;
//    a full EspoCRM batch of 50 records is far below that).
// 3. body-errors: a malformed or oversized body made Express answer with an HTML error
//    page (stack trace outside production). Answer JSON {error, reason} with the parser's
//    4xx status instead, so a sender gets a clear reason.
// 4. cli-errors (motia/dist/cli.mjs): the CLI swallowed every start-up error and exited 1
//    without a word (e.g. the Workbench's HMR port 21678+PORT being out of range). Print it.
// 5. large-args (call-step-file.mjs + python/python-runner.py): Motia passes a handler's
//    input (for an API step the whole request body, twice: parsed and raw) as ONE command-line
//    argument of the Python process. Linux caps one argument at 128 KiB, so any request body
//    over ~64 KB failed with "spawn E2BIG" and answered 500 (EspoCRM then retried it four
//    times and dropped it). Input over 64 KiB now goes through a private temp file (0600)
//    that the runner reads and deletes at once; smaller input still goes on the command line.
// 6. body-depth: a JSON body nested thousands of levels deep parsed fine but then overflowed
//    the call stack in JSON.stringify (and would in the Python runner's json.loads): 500.
//    Bodies nested deeper than 64 levels are refused with 400 before any step runs.
// 7. port-gate (server.mjs, socket-server.mjs + vmh-port-gate.mjs copied from
//    scripts/motia-port-gate.mjs, vmh-webhook-check.mjs from scripts/): default deny on the one port. The gate is the first express
//    middleware and the first check of every WebSocket upgrade; only routes of the project's own
//    API steps pass to their step (which authenticates: webhook signature, ops token). See there.
//    A webhook request is checked in the gate itself (signature, size, content type, shape)
//    before any step process starts; one that passes arrives with its body already parsed
//    (req._body), so the body parsers skip it and the raw body is kept for the step
//    (port-gate-raw-body: the reset of req.rawBody spares a body the gate parsed).
// 8. bullmq-prefix (motia/dist/start.mjs): `motia dev` (make run) keeps BullMQ queues under
//    "motia:events", `motia start` (make serve) under "motia"; the queues plugin of a start on a
//    Redis a dev had used read "events:<queue>" as a queue name and crashed ("Queue name cannot
//    contain :"). Both now use "motia:events" (also the plugin's own default).
// 9. no-hmr-server (start.mjs + workbench middleware.js): `motia start` no longer opens Vite's
//    HMR WebSocket server on PORT+21678 (nothing to hot-reload in production): one port, any port.
//    The Vite client in the page would still try a WebSocket to port 24678: in motia start its
//    connect call is dropped (the page needs no HMR).
// 10. no-third-party (workbench index.html, middleware.js, header.tsx): no Amplitude analytics
//    script (with remote config), no Google Fonts (system fonts instead), no reo.dev script, no
//    "Deploy" pop-up with an image from a third-party host. Staff browsers load only from the
//    service itself (GDPR; works without internet).
// 11. flow-panel-size (@motiadev/ui collapsible-panel.js): the flow picture gets 75% of the
//    height, the logs/traces panel 25% (was half and half: the flow was unreadable at fit-to-view).
//    The Workbench's pre-bundled copy of @motiadev/ui (Vite's deps cache) is dropped when this
//    patch is applied, so the next start bundles the patched file.
// 12. flow-layout (flows-config-stream.mjs, flows-config-endpoint.mjs, use-get-flow-state.tsx):
//    the Workbench drew a flow before its saved layout (motia-workbench.json) had arrived, laid
//    it out automatically as a column and SAVED that over the committed layout (a race, seen on
//    a slow first load). A flow's layout is now always sent (empty if none is saved) and the
//    page waits for it. With MOTIA_FLOW_LAYOUT_READONLY=true (make serve) the running service
//    never writes motia-workbench.json: the layout is part of the code, changed in `make run`.
// 13. redis-reconnect, redis-error-listener (motia/dist/redis/connection.mjs): Motia's one
//    node-redis client (state, streams, traces) had no 'error' listener, so Redis going away
//    crashed the whole runtime ("Unhandled 'error' event"), and it gave up reconnecting after 10
//    tries (~5 s), leaving the runtime broken after any longer outage. It now logs the error and
//    reconnects for ever (at most 3 s apart). Commands issued meanwhile wait in node-redis'
//    offline queue; those in flight when the socket closed are rejected, and Motia fires some
//    (trace and log writes) without awaiting them: such a rejection is logged instead of
//    crashing the runtime (any other unhandled rejection still crashes it, as before).
// 14. redis-down-503 (server.mjs): while that client is not connected, API requests are
//    answered 503 (Retry-After: 60) at once instead of hanging on the trace write until Redis
//    returns. EspoCRM retries a 503 (shared/docs/espocrm-api.md §1.3), so a webhook batch sent
//    during a Redis outage is delivered again later rather than lost or timed out.
// 15. local-plugins-served (workbench middleware.js): Vite served files of the project only from
//    steps/, src/ and tutorial/ (server.fs.allow), so a local Workbench plugin
//    (`packageName: '~/plugins/<folder>'`, the "Sync" tab in plugins/sync-console) answered 403
//    in both `motia dev` and `motia start`. plugins/ is now allowed too.
//
// Usage: node scripts/patch-motia-core.mjs [NODE_MODULES_DIR]   (default: ./node_modules)
//        node scripts/patch-motia-core.mjs --list   (the patches as JSON, file paths relative
//        to NODE_MODULES_DIR: tests/unit/test_motia_install.py un-applies and re-applies each)
import { readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const LIST = process.argv[2] === '--list'
const NM = LIST ? '' : (process.argv[2] ?? 'node_modules')
const CORE = path.join(NM, '@motiadev/core/dist/src')
const WORKBENCH = path.join(NM, '@motiadev/workbench/dist')
const SERVER = path.join(CORE, 'server.mjs')
const SOCKET = path.join(CORE, 'socket-server.mjs')
const CLI = path.join(NM, 'motia/dist/cli.mjs')
const START = path.join(NM, 'motia/dist/start.mjs')
const CALL_STEP = path.join(CORE, 'call-step-file.mjs')
const PY_RUNNER = path.join(CORE, 'python/python-runner.py')
const REDIS_CONNECTION = path.join(NM, 'motia/dist/redis/connection.mjs')
const MIDDLEWARE = path.join(WORKBENCH, 'middleware.js')
const INDEX_HTML = path.join(WORKBENCH, 'index.html')
const HEADER = path.join(WORKBENCH, 'src/components/header/header.tsx')
const FLOW_STATE = path.join(WORKBENCH, 'src/components/flow/hooks/use-get-flow-state.tsx')
const FLOWS_CONFIG_STREAM = path.join(CORE, 'streams/flows-config-stream.mjs')
const FLOWS_CONFIG_ENDPOINT = path.join(CORE, 'endpoints/flows-config-endpoint.mjs')
const UI_PANEL = path.join(NM, '@motiadev/ui/dist/components/ui/collapsible-panel.js')
const VITE_DEPS_CACHE = path.join(NM, '@motiadev/workbench/node_modules/.vite')
const SCRIPTS = path.dirname(fileURLToPath(import.meta.url))
// The gate's modules, copied next to server.mjs (the webhook check keeps its name: the gate imports it).
const MODULES = [
  { name: 'port-gate-module', source: path.join(SCRIPTS, 'motia-port-gate.mjs'), target: path.join(CORE, 'vmh-port-gate.mjs') },
  { name: 'webhook-check-module', source: path.join(SCRIPTS, 'vmh-webhook-check.mjs'), target: path.join(CORE, 'vmh-webhook-check.mjs') },
]

const patches = [
  {
    name: 'stream-wrapper',
    from: 'const main = stream();',
    to: 'const main = Object.create(stream());',
    file: SERVER,
    all: false,
  },
  {
    name: 'body-limit',
    from: 'limit: "1gb",',
    to: 'limit: process.env.MOTIA_BODY_LIMIT || "1mb",',
    file: SERVER,
    all: true,
  },
  {
    name: 'body-errors',
    from: '\tconst router = express.Router();\n\tconst addRoute = (step) => {',
    to:
      '\tapp.use((err, _req, res, next) => { if (err && typeof err.status === "number" && err.status >= 400 && err.status < 500) { res.status(err.status).json({ error: err.type || "bad_request", reason: err.status === 413 ? "request body too large" : "malformed request body: " + String(err.message).slice(0, 200) }); return; } next(err); });\n' +
      '\tconst router = express.Router();\n\tconst addRoute = (step) => {',
    file: SERVER,
    all: false,
  },
  {
    name: 'body-depth',
    from: '\t}));\n\tapp.use((err, _req, res, next) => {',
    to:
      '\t}));\n' +
      '\tapp.use((req, res, next) => { const body = req.body; if (body && typeof body === "object") { const stack = [[body, 1]]; while (stack.length) { const [value, depth] = stack.pop(); if (depth > 64) { res.status(400).json({ error: "bad_request", reason: "malformed request body: JSON nested deeper than 64 levels" }); return; } for (const k in value) { const child = value[k]; if (child && typeof child === "object") stack.push([child, depth + 1]); } } } next(); });\n' +
      '\tapp.use((err, _req, res, next) => {',
    file: SERVER,
    all: false,
  },
  {
    name: 'cli-errors',
    from: 'program.parseAsync(process.argv).catch(() => {',
    to: 'program.parseAsync(process.argv).catch((error) => { console.error("motia failed:", error);',
    file: CLI,
    all: false,
  },
  {
    name: 'large-args-write',
    from: '\t\t\tconst { runner, command, args } = getLanguageBasedRunner(step.filePath);\n',
    to:
      '\t\t\tconst { runner, command, args } = getLanguageBasedRunner(step.filePath);\n' +
      '\t\t\tlet argData = jsonData, argFile;\n' +
      '\t\t\tconst dropArgFile = () => { if (argFile) import("node:fs/promises").then((fs) => fs.unlink(argFile)).catch(() => {}); };\n' +
      '\t\t\tif (command === "python" && Buffer.byteLength(jsonData) > 65536) { const fs = await import("node:fs/promises"); const os = await import("node:os"); const nodePath = await import("node:path"); const { randomUUID } = await import("node:crypto"); argFile = nodePath.join(os.tmpdir(), "motia-args-" + randomUUID() + ".json"); await fs.writeFile(argFile, jsonData, { mode: 0o600, flag: "wx" }); argData = "@motia-args-file:" + argFile; }\n',
    file: CALL_STEP,
    all: false,
  },
  {
    name: 'large-args-pass',
    from: '\t\t\t\t\t\tfilePathToExecute,\n\t\t\t\t\t\tjsonData\n',
    to: '\t\t\t\t\t\tfilePathToExecute,\n\t\t\t\t\t\targData\n',
    file: CALL_STEP,
    all: false,
  },
  {
    name: 'large-args-cleanup',
    from: '\t\t\t\t\tprocessManager.onProcessClose(async (code) => {\n',
    to: '\t\t\t\t\tprocessManager.onProcessClose(async (code) => {\n\t\t\t\t\t\tdropArgFile();\n',
    file: CALL_STEP,
    all: false,
  },
  {
    name: 'large-args-cleanup-spawn',
    from: '\t\t\t\t}).catch(async (error) => {\n',
    to: '\t\t\t\t}).catch(async (error) => {\n\t\t\t\t\tdropArgFile();\n',
    file: CALL_STEP,
    all: false,
  },
  {
    name: 'large-args-read',
    from: '    arg = sys.argv[2] if len(sys.argv) > 2 else None\n',
    to:
      '    arg = sys.argv[2] if len(sys.argv) > 2 else None\n' +
      '    if arg and arg.startswith("@motia-args-file:"):\n' +
      '        _args_path = arg[len("@motia-args-file:"):]\n' +
      '        with open(_args_path, encoding="utf-8") as _args_file:\n' +
      '            arg = _args_file.read()\n' +
      '        try:\n' +
      '            os.unlink(_args_path)\n' +
      '        except OSError:\n' +
      '            pass\n',
    file: PY_RUNNER,
    all: false,
  },
  {
    name: 'port-gate-import',
    from: 'import http from "http";\n',
    to: 'import http from "http";\nimport { portGate } from "./vmh-port-gate.mjs";\n',
    file: SERVER,
    all: false,
  },
  {
    name: 'port-gate-first-middleware',
    from: '\tconst app = express();\n\tif (configureApp) configureApp(app);\n\tconst server = http.createServer(app);\n',
    to:
      '\tconst app = express();\n\tapp.use(portGate.middleware(() => router));\n\tif (configureApp) configureApp(app);\n\tconst server = http.createServer(app);\n' +
      '\tportGate.watch(server, app, () => router);\n',
    file: SERVER,
    all: false,
  },
  {
    name: 'port-gate-step-tag',
    from: '\t\tconst handler = asyncHandler(step);\n',
    to: '\t\tconst handler = asyncHandler(step);\n\t\thandler.motiaStep = step;\n',
    file: SERVER,
    all: false,
  },
  {
    name: 'port-gate-raw-body',
    from: '\tapp.use((req, _, next) => {\n\t\treq.rawBody = "";\n',
    to: '\tapp.use((req, _, next) => {\n\t\tif (!req._body) req.rawBody = "";\n',
    file: SERVER,
    all: false,
  },
  {
    name: 'port-gate-import-socket',
    from: 'import { WebSocket, WebSocketServer } from "ws";\n',
    to: 'import { WebSocket, WebSocketServer } from "ws";\nimport { portGate } from "./vmh-port-gate.mjs";\n',
    file: SOCKET,
    all: false,
  },
  {
    name: 'port-gate-upgrade',
    from: '\t\tverifyClient: async (info, callback) => {\n\t\t\tif (authenticate) try {\n',
    to:
      '\t\tverifyClient: async (info, callback) => {\n' +
      '\t\t\tconst refusal = portGate.upgradeRefusal(info.req);\n' +
      '\t\t\tif (refusal) { callback(false, refusal.code, refusal.message, refusal.headers); return; }\n' +
      '\t\t\tif (authenticate) try {\n',
    file: SOCKET,
    all: false,
  },
  {
    name: 'bullmq-prefix',
    from: 'new BullMQEventAdapter({ connection: getRedisConnectionInfo() })',
    to: 'new BullMQEventAdapter({ connection: getRedisConnectionInfo(), prefix: "motia:events" })',
    file: START,
    all: false,
  },
  {
    name: 'no-hmr-server-start',
    from: '\t\t\tport,\n\t\t\tworkbenchBase,\n',
    to: '\t\t\tport,\n\t\t\thmr: false,\n\t\t\tworkbenchBase,\n',
    file: START,
    all: false,
  },
  {
    name: 'no-hmr-server-middleware',
    from: 'const applyMiddleware = async ({ app, port, workbenchBase, plugins }) => {',
    to: 'const applyMiddleware = async ({ app, port, workbenchBase, plugins, hmr = true }) => {',
    file: MIDDLEWARE,
    all: false,
  },
  {
    name: 'no-hmr-server-vite',
    from: '\t\t\thmr: { port: 21678 + port },\n',
    to: '\t\t\t...hmr ? { hmr: { port: 21678 + port } } : { hmr: false, ws: false },\n',
    file: MIDDLEWARE,
    all: false,
  },
  {
    name: 'no-hmr-client-plugin',
    from: '\t\t\tworkbenchBasePlugin(workbenchBase)\n\t\t],\n',
    to:
      '\t\t\tworkbenchBasePlugin(workbenchBase),\n' +
      '\t\t\t...hmr ? [] : [{ name: "vmh-no-hmr-client", transform(code, id) { if (!id.includes("vite/dist/client/client.mjs")) return null; const call = "transport.connect(createHMRHandler(handleMessage));"; if (!code.includes(call)) throw new Error("vmh-no-hmr-client: Vite client changed, review the patch"); return code.replace(call, "/* vmh: no HMR server in motia start */"); } }]\n' +
      '\t\t],\n',
    file: MIDDLEWARE,
    all: false,
  },
  {
    name: 'local-plugins-served',
    from: '\t\t\t\tpath.join(process.cwd(), "./tutorial"),\n',
    to: '\t\t\t\tpath.join(process.cwd(), "./tutorial"),\n\t\t\t\tpath.join(process.cwd(), "./plugins"),\n',
    file: MIDDLEWARE,
    all: false,
  },
  {
    name: 'no-third-party-reo',
    from: '\t\ttransformIndexHtml(html) {\n\t\t\tif (!(process.env.MOTIA_ANALYTICS_DISABLED !== "true")) return html;\n',
    to: '\t\ttransformIndexHtml(html) {\n\t\t\treturn html; // vmh: never inject the reo.dev script\n',
    file: MIDDLEWARE,
    all: false,
  },
  {
    name: 'no-third-party-fonts',
    from:
      '    <link rel="preconnect" href="https://fonts.googleapis.com" />\n' +
      '    <link rel="preconnect" href="https://fonts.gstatic.com" crossorigin />\n' +
      '    <link\n' +
      '      href="https://fonts.googleapis.com/css2?family=DM+Sans:ital,opsz,wght@0,9..40,100..1000;1,9..40,100..1000&family=IBM+Plex+Mono:ital,wght@0,100;0,200;0,300;0,400;0,500;0,600;0,700;1,100;1,200;1,300;1,400;1,500;1,600;1,700&display=swap"\n' +
      '      rel="stylesheet"\n' +
      '    />\n' +
      '    <link\n' +
      '      href="https://fonts.googleapis.com/css2?family=DM+Mono:ital,wght@0,300;0,400;0,500;1,300;1,400;1,500&display=swap"\n' +
      '      rel="stylesheet"\n' +
      '    />\n',
    to: '    <!-- vmh: no web fonts from third-party hosts; the system fonts are used -->\n',
    file: INDEX_HTML,
    all: false,
  },
  {
    name: 'no-third-party-amplitude',
    from: '    <script src="https://cdn.amplitude.com/libs/analytics-browser-2.11.1-min.js.gz" onload="initAmplitude()"></script>\n',
    to: '    <!-- vmh: no analytics script -->\n',
    file: INDEX_HTML,
    all: false,
  },
  {
    name: 'flow-panel-size',
    from: '\t\tt6 = /* @__PURE__ */ jsx(Panel, {\n\t\t\tid,\n\t\t\tcollapsible: true,\n',
    to: '\t\tt6 = /* @__PURE__ */ jsx(Panel, {\n\t\t\tid,\n\t\t\tdefaultSize: id === "top-panel" ? 75 : id === "bottom-panel" ? 25 : void 0,\n\t\t\tcollapsible: true,\n',
    file: UI_PANEL,
    all: false,
    dropsCache: VITE_DEPS_CACHE,
  },
  {
    name: 'no-third-party-amplitude-init',
    from:
      "    <script>\n      function initAmplitude() {\n        window.amplitude.init('ab2408031a38aa5cb85587a27ecfc69c', {\n" +
      '          autocapture: {\n            fileDownloads: false,\n            formInteractions: false,\n          },\n' +
      '          fetchRemoteConfig: true,\n          recording: false,\n          optOut: true,\n        })\n      }\n    </script>\n',
    to: '    <!-- vmh: no analytics init -->\n',
    file: INDEX_HTML,
    all: false,
  },
  {
    name: 'flow-layout-always-sent',
    from: '\t\treturn this.getConfig().find((flow) => flow.id === id) || null;\n',
    to: '\t\treturn this.getConfig().find((flow) => flow.id === id) || { id, config: {} };\n',
    file: FLOWS_CONFIG_STREAM,
    all: false,
  },
  {
    name: 'flow-layout-waited-for',
    from: '    if (!flow || flow.error) return\n    const hasSameConfig',
    to: '    if (!flow || flow.error || !flowConfig) return // vmh: wait for the saved layout\n    const hasSameConfig',
    file: FLOW_STATE,
    all: false,
  },
  {
    name: 'flow-layout-readonly',
    from: '\tapp.post("/__motia/flows/:id/config", async (req, res) => {\n',
    to:
      '\tapp.post("/__motia/flows/:id/config", async (req, res) => {\n' +
      '\t\tif (process.env.MOTIA_FLOW_LAYOUT_READONLY === "true") { res.status(403).json({ error: "read_only", reason: "the flow layout is part of the code (motia-workbench.json); change it in make run" }); return; }\n',
    file: FLOWS_CONFIG_ENDPOINT,
    all: false,
  },
  {
    name: 'no-third-party-deploy-popup',
    from: '{isDevMode && <DeployButton />}',
    to: '{false && isDevMode && <DeployButton />}',
    file: HEADER,
    all: false,
  },
  {
    name: 'redis-reconnect',
    from:
      '\t\t\t\treconnectStrategy: (retries) => {\n' +
      '\t\t\t\t\tif (retries > 10) return /* @__PURE__ */ new Error("Redis connection retry limit exceeded");\n' +
      '\t\t\t\t\treturn Math.min(retries * 100, 3e3);\n' +
      '\t\t\t\t},\n',
    to: '\t\t\t\treconnectStrategy: (retries) => Math.min(retries * 100, 3e3),\n',
    file: REDIS_CONNECTION,
    all: false,
  },
  {
    name: 'redis-error-listener',
    from: '\t\tawait this.client.connect();\n\t\treturn this.client;\n',
    to:
      '\t\tthis.client.on("error", (err) => { console.error("[Redis] connection error:", err && err.message); });\n' +
      '\t\tprocess.on("unhandledRejection", (reason) => { const lost = ["SocketClosedUnexpectedlyError", "ClientClosedError", "ClientOfflineError", "DisconnectsClientError", "ConnectionTimeoutError", "SocketTimeoutError", "ReconnectStrategyError"]; if (reason && (lost.includes(reason.constructor && reason.constructor.name) || ["ECONNREFUSED", "ECONNRESET", "EPIPE"].includes(reason.code))) { console.error("[Redis] a command was lost while Redis was unavailable:", reason.message); return; } throw reason; });\n' +
      '\t\tawait this.client.connect();\n\t\treturn this.client;\n',
    file: REDIS_CONNECTION,
    all: false,
  },
  {
    name: 'redis-down-503',
    from: '\t\treturn async (req, res) => {\n\t\t\tconst traceId = generateTraceId();\n',
    to:
      '\t\treturn async (req, res) => {\n' +
      '\t\t\tif (state && state.client && state.client.isReady === false) { res.setHeader("Retry-After", "60"); res.status(503).json({ error: "unavailable", reason: "Redis unavailable; retry later" }); return; }\n' +
      '\t\t\tconst traceId = generateTraceId();\n',
    file: SERVER,
    all: false,
  },
]

if (LIST) {
  console.log(JSON.stringify(patches.map(({ dropsCache: _, ...p }) => ({ ...p, file: path.normalize(p.file) })), null, 1))
  process.exit(0)
}

let failed = false
for (const p of patches) if (!p.to) throw new Error(`patch ${p.name}: an empty replacement can never be recognised as applied`)

// The gate's modules themselves: copies of scripts/motia-port-gate.mjs and its webhook check.
if (!existsSync(CORE)) {
  console.error(`patch-motia-core: ${CORE} not found`)
  failed = true
} else {
  for (const m of MODULES) {
    if (existsSync(m.target) && readFileSync(m.target, 'utf8') === readFileSync(m.source, 'utf8')) {
      console.log(`patch-motia-core: ${m.name} already applied`)
    } else {
      writeFileSync(m.target, readFileSync(m.source, 'utf8'))
      console.log(`patch-motia-core: ${m.name} applied`)
    }
  }
}

for (const p of patches) {
  if (!existsSync(p.file)) {
    console.error(`patch-motia-core: ${p.file} not found`)
    failed = true
    continue
  }
  let src = readFileSync(p.file, 'utf8')
  if (src.includes(p.to)) {
    console.log(`patch-motia-core: ${p.name} already applied`)
    continue
  }
  if (!src.includes(p.from)) {
    console.error(`patch-motia-core: ${p.name}: pattern not found; Motia changed, review the patch`)
    failed = true
    continue
  }
  src = p.all ? src.split(p.from).join(p.to) : src.replace(p.from, p.to)
  writeFileSync(p.file, src)
  if (p.dropsCache) rmSync(p.dropsCache, { recursive: true, force: true })
  console.log(`patch-motia-core: ${p.name} applied`)
}
process.exit(failed ? 1 : 0)
