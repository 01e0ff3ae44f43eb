// The "Sync" tab's server side: its data routes, registered with registerApi on Motia's one port.
//
// Every route is a Workbench route, so the port gate (scripts/motia-port-gate.mjs) puts it behind
// the Workbench login and refuses it cross-site, like every route that is not a project step.
// No second implementation: each route calls the service's own ops API steps on the same port
// (services/intake/ops_api.py ROUTES) with the admin token from the environment; the token never
// reaches the browser. The answers hold personal values (a conflict's values, history): they go
// to the logged-in person only and are never logged here (only the action, the record id and the
// status).
import type { MotiaPlugin, MotiaPluginContext } from '@motiadev/core'

export const CONSOLE_BASE = '/__vmh/sync-console'
const OPS_TIMEOUT_MS = 120_000

// A console action -> the ops route it calls and the body it sends (unknown fields are dropped).
type Body = Record<string, unknown>
const ACTIONS: Record<string, { path: string; body: (b: Body) => Body }> = {
  sync: { path: '/vmh/beteiligte/sync/record', body: (b) => ({ id: b.id }) },
  relink: { path: '/vmh/beteiligte/sync/relink', body: (b) => ({ id: b.id, betnr: Number(b.betnr) }) },
  unlock: { path: '/vmh/beteiligte/sync/unlock', body: (b) => ({ id: b.id }) },
  exclude: { path: '/vmh/beteiligte/sync/exclude', body: (b) => ({ id: b.id, excluded: true }) },
  include: { path: '/vmh/beteiligte/sync/exclude', body: (b) => ({ id: b.id, excluded: false }) },
  release: { path: '/vmh/beteiligte/sync/deletions', body: () => ({ action: 'release' }) },
  confirm: { path: '/vmh/beteiligte/sync/deletions', body: () => ({ action: 'confirm' }) },
  restore: { path: '/vmh/beteiligte/sync/restore', body: (b) => ({ id: b.id, field: b.field }) },
}

// Where this process listens: HOST as `motia start -H` got it (a wildcard means loopback works).
function opsBase(): string {
  const host = process.env.HOST && !['0.0.0.0', '::', ''].includes(process.env.HOST) ? process.env.HOST : '127.0.0.1'
  return `http://${host.includes(':') ? `[${host}]` : host}:${process.env.PORT ?? '3000'}`
}

type OpsAnswer = { status: number; body: unknown }

async function callOps(method: 'GET' | 'POST', route: string, body?: Body): Promise<OpsAnswer> {
  const token = process.env.SYNC_ADMIN_TOKEN
  if (!token) return { status: 503, body: { error: 'SYNC_ADMIN_TOKEN is not set: the console cannot call the ops API' } }
  try {
    const res = await fetch(opsBase() + route, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(OPS_TIMEOUT_MS),
    })
    const text = await res.text()
    let parsed: unknown = text
    try {
      parsed = JSON.parse(text)
    } catch {
      // not JSON (a proxy's error page): shown as text
    }
    return { status: res.status, body: parsed }
  } catch (error) {
    return { status: 502, body: { error: `ops API not reachable: ${(error as Error).name}` } }
  }
}

const one = (value: unknown): string => (Array.isArray(value) ? String(value[0] ?? '') : String(value ?? ''))

export default function syncConsolePlugin(motia: MotiaPluginContext): MotiaPlugin {
  // Health, counts and what needs a person, in one answer (three ops calls side by side).
  motia.registerApi({ method: 'GET', path: `${CONSOLE_BASE}/overview` }, async () => {
    const [health, status, attention] = await Promise.all([
      callOps('GET', '/vmh/health'),
      callOps('GET', '/vmh/beteiligte/sync/status'),
      callOps('GET', '/vmh/beteiligte/sync/attention'),
    ])
    return { status: 200, body: { health, status, attention, loadedAt: new Date().toISOString() } }
  })

  motia.registerApi({ method: 'GET', path: `${CONSOLE_BASE}/history` }, async (req) => {
    const id = one(req.queryParams?.id).trim()
    if (!id) return { status: 400, body: { error: 'expected ?id=<EspoCRM id>' } }
    const answer = await callOps('GET', `/vmh/beteiligte/sync/history?id=${encodeURIComponent(id)}`)
    return { status: answer.status, body: answer.body as Record<string, unknown> }
  })

  motia.registerApi({ method: 'POST', path: `${CONSOLE_BASE}/action` }, async (req) => {
    const body = (req.body ?? {}) as Body
    const action = ACTIONS[String(body.action)]
    if (!action) return { status: 400, body: { error: `unknown action; one of ${Object.keys(ACTIONS).join(', ')}` } }
    const answer = await callOps('POST', action.path, action.body(body))
    motia.printer.printPluginLog(`sync console: ${String(body.action)} ${one(body.id) || '-'} -> ${answer.status}`)
    return { status: answer.status, body: answer.body as Record<string, unknown> }
  })

  return {
    workbench: [
      {
        packageName: '~/plugins/sync-console',
        componentName: 'SyncConsole',
        label: 'Sync',
        labelIcon: 'refresh-cw',
        position: 'top',
      },
    ],
  }
}
