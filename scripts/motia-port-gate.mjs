// The gate in front of everything Motia serves on its one port (default deny).
//
// scripts/patch-motia-core.mjs copies this file into @motiadev/core/dist/src/ and makes the
// core install it as the FIRST express middleware of the app and as the first check of every
// WebSocket upgrade, so it holds for every route, including the ones plugins, the Workbench and
// later Motia versions add, without a list of routes anywhere:
//
//   request matches a route of one of the project's own API steps (steps/ or src/ of the
//   project, not Motia's system `POST /emit`, not a plugin route)   -> passes; the step decides
//                                                                      (ops bearer token)
//     ...an EspoCRM webhook route (/vmh/webhook/...)              -> checked HERE first: body
//        size, signature, content type and shape, exactly as the Python intake checks them
//        (vmh-webhook-check.mjs: services/intake/webhook.py parse_and_verify in Node, same
//        order, same answers); a request
//        that fails is answered 413/401/415/400 at once and no step process is started. Only
//        a request that passes reaches the step, which checks it again (defence in depth).
//        Never a 429: EspoCRM drops a 429'd batch for good; a source refused more than 20
//        times a second gets its refusals 1 s late instead. Secrets: ESPOCRM_WEBHOOK_SECRETS
//        from the environment only (none -> every webhook is refused 401); never logged.
//   anything else (Workbench `/` and its assets, streams/WebSockets, every `/__motia*` route,
//   `POST /emit`, plugin routes, unknown paths):
//     WORKBENCH_USER and WORKBENCH_PASSWORD set   -> HTTP Basic login (constant-time compare),
//                                                    401 otherwise
//     WORKBENCH_OPEN_LOCAL=true, no password      -> open, but only on a loopback socket
//                                                    (`make run`, the sandbox); 404 otherwise
//     neither                                     -> 404: not served on this port at all
//   ...and never for a cross-site request (Sec-Fetch-Site cross-site/same-site, or an Origin
//   that is not this Host; following a link, a GET navigation, is fine): 403. A browser sends cached Basic credentials with any request to
//   the host, so without this a web page a logged-in member of staff opens could POST /emit or
//   open the log streams (CSRF, cross-site WebSocket hijacking).
//
// The mode is read once from the environment at start and printed with the routes that pass to
// their steps. MOTIA_ROUTE_TABLE_FILE=<path> writes every route the running app serves (as
// JSON) once it listens: the end-to-end test probes each of them without credentials.
import { createHash, timingSafeEqual } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { MAX_BODY_BYTES, WEBHOOK_PATH_PREFIX, checkWebhook, parseWebhookSecrets } from './vmh-webhook-check.mjs'

const REALM = 'Motia Workbench (vmh Beteiligte sync)'
const STEP_DIRS = ['steps', 'src']

const digest = (text) => createHash('sha256').update(text, 'utf8').digest()

// Equal-length digests: timingSafeEqual never throws and leaks no length.
const sameSecret = (given, expected) => timingSafeEqual(digest(given), digest(expected))

export function parseBasicAuth(header) {
  const [scheme, encoded] = String(header ?? '').trim().split(/\s+/, 2)
  if (!scheme || scheme.toLowerCase() !== 'basic' || !encoded) return null
  const decoded = Buffer.from(encoded, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return null
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

const isLoopback = (address) =>
  typeof address === 'string' && (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.'))

// A request a browser sends on behalf of another site. Requests without these headers (curl,
// EspoCRM, monitoring) are not browser requests of another site; following a link to the
// Workbench (a GET navigation) is fine.
export function isCrossSite(req) {
  const headers = req.headers ?? {}
  if ((req.method === 'GET' || req.method === 'HEAD') && headers['sec-fetch-mode'] === 'navigate') return false
  const site = headers['sec-fetch-site']
  if (site) return site === 'cross-site' || site === 'same-site'
  const origin = headers.origin
  if (!origin) return false
  try {
    return new URL(origin).host !== headers.host
  } catch {
    return true // "null" (sandboxed frames, file:) or garbage
  }
}

export function gateMode(env) {
  if (env.WORKBENCH_USER && env.WORKBENCH_PASSWORD) return 'login'
  if (env.WORKBENCH_OPEN_LOCAL === 'true') return 'open-local'
  return 'off'
}

// A step of this project: a file under <project>/steps or <project>/src, not a plugin's step
// (plugins register theirs with flows ['_plugin'] or from node_modules) nor Motia's system steps.
export function isProjectStep(step, projectDir) {
  const file = step?.filePath
  if (typeof file !== 'string' || !path.isAbsolute(file)) return false
  if (step.config?.type !== 'api' || (step.config.flows ?? []).includes('_plugin')) return false
  const rel = path.relative(projectDir, file)
  const parts = rel.split(path.sep)
  return !rel.startsWith('..') && STEP_DIRS.includes(parts[0]) && !parts.includes('node_modules')
}

// The body, at most `limit` bytes: null when it is larger (then not read further).
function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    if (Number(req.headers?.['content-length'] ?? 0) > limit) return resolve(null)
    const chunks = []
    let size = 0
    const done = (value) => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', reject)
      resolve(value)
    }
    const onData = (chunk) => {
      size += chunk.length
      if (size > limit) {
        req.pause() // read no further; the answer closes the connection
        return done(null)
      }
      chunks.push(chunk)
    }
    const onEnd = () => done(Buffer.concat(chunks))
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', reject)
  })
}

// The active secrets, and what is wrong with the variable (printed once the port is open).
function webhookSecrets(env) {
  if (env.ESPOCRM_WEBHOOK_SECRETS === undefined) {
    return { secrets: new Map(), problem: 'ESPOCRM_WEBHOOK_SECRETS is not in the environment: every webhook is refused (401)' }
  }
  try {
    return { secrets: parseWebhookSecrets(env.ESPOCRM_WEBHOOK_SECRETS), problem: null }
  } catch (err) {
    return { secrets: new Map(), problem: `ESPOCRM_WEBHOOK_SECRETS is invalid (${err.message}): every webhook is refused (401)` }
  }
}

// Abusive unsigned traffic is slowed down per source (the socket's peer address): each source
// may be refused REFUSALS_PER_SECOND times a second (bursts up to REFUSAL_BURST) at once; beyond
// that its refusal is still answered, the same 4xx, but only after TARPIT_MS. A held answer costs
// a timer, no CPU, so a flood at N in flight gets about N answers a second and the service keeps
// its CPU for real edits. A request that passes the check is never held and never answered 429
// (EspoCRM drops a 429'd batch for good); EspoCRM itself sends at most 20 batches per 2 minutes,
// so even a lagging secret rotation (401s) stays within the budget. At most MAX_HELD answers are
// held at a time (beyond that they go at once); per-process memory, MAX_SOURCES sources at most.
export const REFUSALS_PER_SECOND = 20
export const REFUSAL_BURST = 40
export const TARPIT_MS = 1000
const MAX_HELD = 1000
const MAX_SOURCES = 10_000

/** A token bucket per source: `allow(source)` is true when its refusal may be answered at once. */
export function refusalThrottle({ perSecond = REFUSALS_PER_SECOND, burst = REFUSAL_BURST, now = () => performance.now() } = {}) {
  const buckets = new Map()
  return (source) => {
    const t = now()
    if (buckets.size >= MAX_SOURCES && !buckets.has(source)) buckets.clear()
    const bucket = buckets.get(source) ?? { tokens: burst, at: t }
    bucket.tokens = Math.min(burst, bucket.tokens + ((t - bucket.at) / 1000) * perSecond)
    bucket.at = t
    buckets.set(source, bucket)
    if (bucket.tokens < 1) return false
    bucket.tokens -= 1
    return true
  }
}

// Refusals are counted, not logged one by one (a flood must not flood the log): the first one
// at once, then one summary line a minute at most, by status. No address, no secret, no body.
function refusalLog(log, now = Date.now) {
  let counts = {}
  let last = 0
  return (status, error) => {
    counts[status] = (counts[status] ?? 0) + 1
    if (now() - last < 60_000) return
    const summary = Object.entries(counts).map(([s, n]) => `${n} x ${s}`).join(', ')
    log(`[port-gate] webhook requests refused before any step ran: ${summary} (latest: ${status} ${error})`)
    counts = {}
    last = now()
  }
}

// `throttle` and `tarpitMs`: the refusal limit's parameters (tests shorten them).
export function createPortGate({ env = process.env, projectDir = process.cwd(), log = console.log, throttle = {}, tarpitMs = TARPIT_MS } = {}) {
  const mode = gateMode(env)
  const { secrets, problem: secretsProblem } = webhookSecrets(env)
  const refused = refusalLog(log)
  const allowRefusal = refusalThrottle(throttle)
  let held = 0
  const user = env.WORKBENCH_USER ?? ''
  const password = env.WORKBENCH_PASSWORD ?? ''

  const loginOk = (headers) => {
    const creds = parseBasicAuth(headers?.authorization)
    // Compare both, always: a wrong user costs the same as a wrong password.
    const userOk = sameSecret(creds?.user ?? '', user)
    const passwordOk = sameSecret(creds?.password ?? '', password)
    return creds !== null && userOk && passwordOk
  }

  // Who may see what is not a step route: the Workbench, its assets, streams, plugins, /emit.
  const workbenchAllowed = (req) => {
    if (isCrossSite(req)) return false
    if (mode === 'login') return loginOk(req.headers)
    if (mode === 'open-local') return isLoopback(req.socket?.localAddress)
    return false
  }

  const refuse = (req, res) => {
    if (isCrossSite(req)) {
      res.status(403).json({ error: 'forbidden', reason: 'cross-site request refused' })
    } else if (mode === 'login') {
      res.setHeader('WWW-Authenticate', `Basic realm="${REALM}", charset="UTF-8"`)
      res.status(401).json({ error: 'unauthorized', reason: 'Workbench login required (WORKBENCH_USER/WORKBENCH_PASSWORD)' })
    } else {
      res.status(404).json({ error: 'not_found', reason: 'not served on this port' })
    }
  }

  // A webhook request is judged here before any step process starts; one that passes carries
  // its parsed body on (req._body: the body parsers leave it alone) to the step.
  const webhookGate = (req, res, next) => {
    readBody(req, MAX_BODY_BYTES).then(
      (raw) => {
        const verdict = raw === null ? { status: 413, error: `body larger than ${MAX_BODY_BYTES} bytes` } : checkWebhook(raw, req.headers ?? {}, secrets)
        if (verdict.status === 200) {
          req.body = verdict.items
          req.rawBody = raw.toString('utf8')
          req._body = true
          return next()
        }
        refused(verdict.status, verdict.error)
        if (raw === null) res.setHeader('Connection', 'close') // the rest of the body is not read
        const answer = () => res.status(verdict.status).json({ error: verdict.error })
        if (held >= MAX_HELD || allowRefusal(req.socket?.remoteAddress ?? '')) return answer()
        held += 1
        setTimeout(() => {
          held -= 1
          answer()
        }, tarpitMs)
      },
      () => {}, // the client went away while sending: nobody to answer
    )
  }

  // The first route of Motia's step router that express would pick for this request.
  const routeStep = (router, req) => {
    for (const layer of router?.stack ?? []) {
      if (!layer.route) continue
      let matches = false
      try {
        matches = layer.match(req.path) && layer.route._handles_method(req.method)
      } catch {
        return null // undecodable path: express would answer 400; the gate refuses it
      }
      if (matches) return layer.route.stack.map((l) => l.handle?.motiaStep).find(Boolean) ?? null
    }
    return null
  }

  const stepRoutes = (router) =>
    (router?.stack ?? [])
      .filter((layer) => layer.route && layer.route.stack.some((l) => isProjectStep(l.handle?.motiaStep, projectDir)))
      .flatMap((layer) => Object.keys(layer.route.methods).map((m) => `${m.toUpperCase()} ${layer.route.path}`))

  return {
    mode,
    secretsProblem,
    workbenchAllowed,

    // express middleware; getRouter returns Motia's API-step router (created after the gate).
    middleware(getRouter) {
      return (req, res, next) => {
        const step = routeStep(getRouter(), req)
        if (isProjectStep(step, projectDir)) {
          return String(step.config.path ?? '').startsWith(WEBHOOK_PATH_PREFIX) ? webhookGate(req, res, next) : next()
        }
        if (workbenchAllowed(req)) return next()
        refuse(req, res)
      }
    },

    // WebSocket upgrades (Motia's streams) never reach express: checked in verifyClient.
    upgradeRefusal(req) {
      if (workbenchAllowed(req)) return null
      if (isCrossSite(req)) return { code: 403, message: 'Forbidden', headers: {} }
      return mode === 'login'
        ? { code: 401, message: 'Unauthorized', headers: { 'WWW-Authenticate': `Basic realm="${REALM}", charset="UTF-8"` } }
        : { code: 404, message: 'Not Found', headers: {} }
    },

    // Print the mode and the step routes once the port is open; optionally dump the route table.
    watch(server, app, getRouter) {
      server.once('listening', () => {
        const open = stepRoutes(getRouter())
        const what = {
          login: 'Workbench, streams, /__motia*, /emit and plugin routes need the Workbench login (HTTP Basic)',
          'open-local': 'Workbench OPEN without login on 127.0.0.1 (sandbox mode, WORKBENCH_OPEN_LOCAL=true)',
          off: 'Workbench not served on this port (set WORKBENCH_USER and WORKBENCH_PASSWORD to serve it behind a login)',
        }[mode]
        log(`[port-gate] ${what}; routes that pass to their steps: ${open.join(', ') || 'none'}`)
        log(`[port-gate] webhook requests (${WEBHOOK_PATH_PREFIX}*) are checked here before any step runs: size, signature (${secrets.size} active secrets), content type, shape`)
        if (secretsProblem) log(`[port-gate] ${secretsProblem}`)
        if (env.MOTIA_ROUTE_TABLE_FILE) writeFileSync(env.MOTIA_ROUTE_TABLE_FILE, JSON.stringify(routeTable(app, getRouter(), projectDir), null, 1))
      })
    },
  }
}

// Every route and mounted middleware of the running app, in express's order.
export function routeTable(app, router, projectDir) {
  const describe = (layer, source) => {
    if (layer.route) {
      const step = layer.route.stack.map((l) => l.handle?.motiaStep).find(Boolean)
      return Object.keys(layer.route.methods).map((m) => ({
        kind: 'route',
        source,
        method: m.toUpperCase(),
        path: layer.route.path,
        step: step?.config?.name ?? null,
        projectStep: isProjectStep(step, projectDir),
      }))
    }
    if (layer.handle === router) return router.stack.flatMap((l) => describe(l, 'step-router'))
    return [{ kind: 'middleware', source, name: layer.name, pattern: String(layer.regexp) }]
  }
  return (app._router?.stack ?? []).flatMap((layer) => describe(layer, 'app'))
}

export const portGate = createPortGate()
