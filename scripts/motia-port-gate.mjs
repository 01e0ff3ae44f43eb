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
//        (services/intake/webhook.py parse_and_verify, same order, same answers); a request
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
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import path from 'node:path'

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

// ---------------------------------------------------------------------------- the webhook check
// A mirror of services/intake/webhook.py parse_and_verify (and services/espocrm/webhook.py
// verify_signature), answer for answer: tests/support/webhook_vectors.json is run against both.
// Order: size (413) -> signature (401) -> content type (415) -> JSON and shape (400). The
// signature comes before everything but the size, so an unsigned request learns nothing else.
export const WEBHOOK_PATH_PREFIX = '/vmh/webhook/'
export const MAX_BODY_BYTES = 1_000_000
const MAX_BATCH = 50
const MAX_ID_LENGTH = 64
const MAX_DEPTH = 64
// Strict base64 (no whitespace inside, correct padding): the Python side uses the same pattern.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const ID_CHARS = /^[A-Za-z0-9-]*$/
const ALNUM = /[A-Za-z0-9]/

/** "webhookId:secretKey,webhookId:secretKey" -> Map(webhookId -> secretKey). Throws on bad input
 * (the message never contains a secret). */
export function parseWebhookSecrets(value) {
  if (typeof value !== 'string' || !value.trim()) throw new Error('expected comma-separated webhookId:secretKey pairs')
  const pairs = new Map()
  for (const raw of value.split(',')) {
    const chunk = raw.trim()
    if (!chunk) continue
    const colon = chunk.indexOf(':')
    const id = colon < 0 ? '' : chunk.slice(0, colon).trim()
    const secret = colon < 0 ? '' : chunk.slice(colon + 1).trim()
    if (!id || !secret) throw new Error('each entry must be webhookId:secretKey')
    pairs.set(id, secret)
  }
  if (!pairs.size) throw new Error('expected at least one webhookId:secretKey pair')
  return pairs
}

class Refusal {
  constructor(status, error) {
    this.status = status
    this.error = error
  }
}

const stripOws = (text) => text.replace(/^[ \t]+|[ \t]+$/g, '')

// base64(id ":" digest) -> [id, digest bytes]; the id never contains ':', the digest may.
function idAndDigest(header, digestLength) {
  const text = stripOws(header)
  if (!BASE64.test(text)) throw new Refusal(401, 'signature rejected: malformed signature')
  const decoded = Buffer.from(text, 'base64')
  const colon = decoded.indexOf(0x3a)
  const id = colon < 0 ? Buffer.alloc(0) : decoded.subarray(0, colon)
  const digest = colon < 0 ? Buffer.alloc(0) : decoded.subarray(colon + 1)
  if (colon < 0 || !id.length || digest.length !== digestLength || id.some((b) => b > 0x7f)) {
    throw new Refusal(401, 'signature rejected: malformed signature')
  }
  return [id.toString('ascii'), digest]
}

const hmacOf = (secret, raw) => createHmac('sha256', Buffer.from(secret, 'utf8')).update(raw).digest()

function secretFor(secrets, id) {
  const secret = secrets.get(id)
  if (secret === undefined) throw new Refusal(401, 'signature rejected: unknown webhook id')
  return secret
}

// `Signature` (hex digest) wins; the legacy `X-Signature` (raw digest) only when it is absent.
function verifySignature(raw, headers, secrets) {
  const signature = headers.signature
  if (signature !== undefined) {
    const [id, given] = idAndDigest(String(signature), 64)
    const expected = Buffer.from(hmacOf(secretFor(secrets, id), raw).toString('hex'), 'ascii')
    const lowered = Buffer.from(given.map((b) => (b >= 0x41 && b <= 0x5a ? b + 0x20 : b)))
    if (!timingSafeEqual(expected, lowered)) throw new Refusal(401, 'signature rejected: signature mismatch')
    return id
  }
  const legacy = headers['x-signature']
  if (legacy === undefined) throw new Refusal(401, 'signature rejected: missing signature')
  const [id, given] = idAndDigest(String(legacy), 32)
  if (!timingSafeEqual(hmacOf(secretFor(secrets, id), raw), given)) {
    throw new Refusal(401, 'signature rejected: signature mismatch')
  }
  return id
}

// What EspoCRM sends: `application/json`, at most a utf-8 charset, no content coding.
function checkContentType(headers) {
  const [media, ...params] = String(headers['content-type'] ?? '').split(';')
  const charsetOk = params.every((param) => {
    const eq = param.indexOf('=')
    if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== 'charset') return true
    return ['utf-8', 'utf8'].includes(param.slice(eq + 1).trim().replace(/^"|"$/g, '').toLowerCase())
  })
  if (media.trim().toLowerCase() !== 'application/json' || !charsetOk) {
    throw new Refusal(415, 'content type must be application/json (utf-8)')
  }
  const coding = String(headers['content-encoding'] ?? 'identity').trim().toLowerCase()
  if (coding !== 'identity' && coding !== '') throw new Refusal(415, 'content encoding not supported')
}

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value)

function tooDeep(value) {
  const stack = [[value, 1]]
  while (stack.length) {
    const [item, depth] = stack.pop()
    if (item === null || typeof item !== 'object') continue
    if (depth > MAX_DEPTH) return true
    for (const child of Object.values(item)) stack.push([child, depth + 1])
  }
  return false
}

function parseItems(raw) {
  let items
  try {
    // fatal: a body that is not UTF-8 is not JSON (TextDecoder drops one leading BOM, as
    // Python's utf-8 decoding with the BOM removed does)
    items = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw))
  } catch {
    throw new Refusal(400, 'body is not valid JSON')
  }
  if (tooDeep(items)) throw new Refusal(400, 'body is nested too deeply')
  if (!Array.isArray(items)) throw new Refusal(400, 'body must be a JSON array of records')
  if (!items.length) throw new Refusal(400, 'empty batch')
  if (items.length > MAX_BATCH) throw new Refusal(400, `batch of ${items.length} items exceeds ${MAX_BATCH}`)
  items.forEach((item, index) => {
    if (!isObject(item)) throw new Refusal(400, `item ${index} is not an object`)
    const id = Object.hasOwn(item, 'id') ? item.id : undefined
    if (typeof id !== 'string' || !id || [...id].length > MAX_ID_LENGTH) {
      throw new Refusal(400, `item ${index} has no valid id`)
    }
    if (!ID_CHARS.test(id) || !ALNUM.test(id)) throw new Refusal(400, `item ${index} has an invalid id`)
  })
  return items
}

/** The intake's verdict on one webhook request: {status: 200, webhookId, items} or {status, error}.
 * `raw` is the body (a Buffer), `headers` have lower-case names, `secrets` a Map. Pure. */
export function checkWebhook(raw, headers, secrets) {
  try {
    if (raw.length > MAX_BODY_BYTES) throw new Refusal(413, `body larger than ${MAX_BODY_BYTES} bytes`)
    const webhookId = verifySignature(raw, headers, secrets)
    checkContentType(headers)
    return { status: 200, webhookId, items: parseItems(raw) }
  } catch (err) {
    if (err instanceof Refusal) return { status: err.status, error: err.error }
    throw err
  }
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
