// What the EspoCRM webhook intake answers to one request, in Node: a mirror of
// services/intake/webhook.py parse_and_verify (and services/espocrm/webhook.py verify_signature),
// answer for answer; tests/support/webhook_vectors.json is run against both
// (tests/unit/test_webhook_vectors.py, tests/unit/test_port_gate.py). The port gate
// (scripts/motia-port-gate.mjs) runs it before any step process starts; the patch script copies
// this file next to it into @motiadev/core/dist/src/ under the same name.
//
// Order: size (413) -> signature (401) -> content type (415) -> JSON and shape (400). The
// signature comes before everything but the size, so an unsigned request learns nothing else.
import { createHmac, timingSafeEqual } from 'node:crypto'

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
