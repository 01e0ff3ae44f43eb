// The Workbench's "Sync" tab (registered in motia.config.ts by ./plugin.ts): what is held and why,
// the action next to it, and an overwritten value restored in one click. It shows what the ops
// functions return (through the data routes in ./plugin.ts) and computes nothing of its own.
//
// Styling: inline styles on the Workbench's own CSS variables (--foreground, --border, --card, …),
// so the tab follows the light and dark theme; the Workbench's Tailwind build does not scan this
// folder, so no utility classes are used here. Nothing is loaded from a third party.
import { Button } from '@motiadev/ui'
import { useCallback, useEffect, useState, type CSSProperties, type ReactNode } from 'react'

const BASE = '/__vmh/sync-console'

type Json = Record<string, any>
type Answer = { status: number; body: any }
type Overview = { health: Answer; status: Answer; attention: Answer; loadedAt: string }
type Result = { text: string; ok: boolean; seq: number }

const S: Record<string, CSSProperties> = {
  root: {
    height: '100%',
    overflow: 'auto',
    padding: 12,
    color: 'var(--foreground)',
    background: 'var(--background)',
    fontSize: 13,
    display: 'flex',
    flexDirection: 'column',
    gap: 10,
  },
  header: { display: 'flex', alignItems: 'center', justifyContent: 'space-between', gap: 12 },
  h1: { fontSize: 18, fontWeight: 600, margin: 0 },
  h2: { fontSize: 14, fontWeight: 600, margin: '0 0 8px 0' },
  muted: { color: 'var(--text-body, var(--muted-foreground))' },
  section: { border: '1px solid var(--border)', borderRadius: 8, padding: 12, background: 'var(--card)' },
  grid: { display: 'grid', gridTemplateColumns: 'repeat(auto-fill, minmax(170px, 1fr))', gap: 6 },
  card: { border: '1px solid var(--border)', borderRadius: 6, padding: '4px 8px', background: 'var(--background)', minWidth: 0 },
  table: { width: '100%', borderCollapse: 'collapse' },
  th: { textAlign: 'left', padding: '4px 6px', borderBottom: '1px solid var(--border)', fontWeight: 600 },
  td: { padding: '4px 6px', borderBottom: '1px solid var(--border)', verticalAlign: 'top' },
  mono: { fontFamily: 'ui-monospace, monospace', fontSize: 12 },
  actions: { display: 'flex', gap: 4, flexWrap: 'wrap' },
  input: {
    width: 90,
    padding: '2px 6px',
    border: '1px solid var(--border)',
    borderRadius: 4,
    background: 'var(--background)',
    color: 'var(--foreground)',
  },
  link: { background: 'none', border: 'none', padding: 0, color: 'var(--text-accent, var(--primary))', cursor: 'pointer' },
}

const STATE_COLOUR: Record<string, string> = { ok: '#16a34a', warn: '#d97706', fail: 'var(--error, #d61355)' }

function Badge({ state, children }: { state: string; children: ReactNode }) {
  const colour = STATE_COLOUR[state] ?? 'var(--text-body)'
  return (
    <span
      style={{ border: `1px solid ${colour}`, color: colour, borderRadius: 10, padding: '0 6px', fontSize: 11, fontWeight: 600 }}
    >
      {children}
    </span>
  )
}

const when = (iso?: string | null) => (iso ? new Date(iso).toLocaleString() : '–')
const show = (v: unknown) => (v === null || v === undefined || v === '' ? '∅' : typeof v === 'object' ? JSON.stringify(v) : String(v))
const errorOf = (a: Answer | undefined) =>
  a && a.status >= 400 ? `${a.status}: ${typeof a.body === 'object' ? (a.body?.error ?? JSON.stringify(a.body)) : a.body}` : null

// One line per check: its problem, else its scalar figures; the whole detail in the tooltip.
function summary(c: Json): string {
  if (c.problem) return String(c.problem)
  if (Array.isArray(c.problems) && c.problems.length) return `${c.problems.length} problem(s)`
  // Scalars, and the non-zero counts of a flat object of numbers (e.g. espocrm's records).
  const parts = Object.entries(c).flatMap(([k, v]): string[] => {
    if (k === 'state' || v === null) return []
    if (typeof v !== 'object') return [`${k.replace(/_/g, ' ')} ${v}`]
    const counts = Object.entries(v as Json).filter(([, n]) => typeof n === 'number' && n > 0)
    return counts.map(([name, n]) => `${name.replace(/_/g, ' ')} ${n}`)
  })
  return parts.slice(0, 3).join(' · ')
}

function Chip({ name, state, line, title, testid }: { name: string; state: string; line: string; title: string; testid: string }) {
  return (
    <div style={S.card} data-testid={testid} data-name={name} title={title}>
      <div style={{ display: 'flex', justifyContent: 'space-between', gap: 6 }}>
        <strong>{name}</strong>
        <Badge state={state}>{state}</Badge>
      </div>
      <div style={{ ...S.muted, marginTop: 2, whiteSpace: 'nowrap', overflow: 'hidden', textOverflow: 'ellipsis' }}>{line || ' '}</div>
    </div>
  )
}

function Health({ overview }: { overview: Overview }) {
  const health: Json = overview.health.body ?? {}
  const status: Json = overview.status.body ?? {}
  const checks: Json = health.checks ?? {}
  const counts: Json = status.counts ?? {}
  const breakers: Json = status.breakers ?? {}
  const problem = errorOf(overview.status) ?? (health.checks ? null : errorOf(overview.health))
  const lastSweep = status.last_sweep?.at ?? status.last_sweep?.finished_at
  return (
    <section style={S.section} data-testid="sync-health">
      <h2 style={S.h2}>
        Health{' '}
        {health.healthy === undefined ? null : (
          <Badge state={health.healthy ? 'ok' : 'fail'}>{health.healthy ? 'healthy' : 'unhealthy'}</Badge>
        )}
        <span style={{ ...S.muted, fontWeight: 400, marginLeft: 8 }}>last sweep {when(lastSweep)}</span>
      </h2>
      {problem && <p style={{ color: 'var(--error)' }}>{problem}</p>}
      <div style={S.grid}>
        {Object.entries(checks).map(([name, c]: [string, any]) => (
          <Chip key={name} name={name} state={c.state} line={summary(c)} title={JSON.stringify(c, null, 1)} testid="health-check" />
        ))}
        {Object.entries(breakers).map(([system, b]: [string, any]) => (
          <Chip
            key={system}
            name={`breaker ${system}`}
            state={b.open ? 'fail' : 'ok'}
            line={`${b.open ? 'open' : 'closed'} · ${b.waiting} waiting${b.open ? ` · ${b.reason}` : ''}`}
            title={JSON.stringify(b, null, 1)}
            testid="breaker"
          />
        ))}
      </div>
      <div style={{ display: 'flex', gap: 12, flexWrap: 'wrap', marginTop: 8 }} data-testid="status-counts">
        <span style={S.muted}>records per syncStatus:</span>
        {Object.entries(counts).map(([k, n]) => (
          <span key={k} data-status={k}>
            <span style={S.muted}>{k}</span> <strong>{String(n)}</strong>
          </span>
        ))}
      </div>
    </section>
  )
}

type Act = (action: string, body: Json) => Promise<void>

// The header row of the tab's tables ('' for a column without a title).
function TableHead({ columns }: { columns: string[] }) {
  return (
    <thead>
      <tr>
        {columns.map((title, i) => (
          <th key={i} style={S.th}>
            {title}
          </th>
        ))}
      </tr>
    </thead>
  )
}

function RecordRow({ r, act, busy, onHistory }: { r: Json; act: Act; busy: boolean; onHistory: (id: string) => void }) {
  const [betnr, setBetnr] = useState('')
  const recordActions = (r.actions as string[]).filter((a) => a !== 'release' && a !== 'confirm')
  return (
    <tr data-testid="needs-person-row" data-id={r.id} data-kind={r.kind}>
      <td style={{ ...S.td, ...S.mono }}>
        <button type="button" style={S.link} onClick={() => onHistory(r.id)} title="show the history">
          {r.id}
        </button>
        {r.betnr ? <div style={S.muted}>betnr {r.betnr}</div> : null}
      </td>
      <td style={S.td}>{r.kind}</td>
      <td style={S.td} data-testid="reason">
        {r.reason}
      </td>
      <td style={S.td}>{when(r.since)}</td>
      <td style={S.td}>
        <div style={S.actions}>
          {recordActions.map((a) =>
            a === 'relink' ? (
              <span key={a} style={{ display: 'inline-flex', gap: 4 }}>
                <input
                  style={S.input}
                  placeholder="betnr"
                  inputMode="numeric"
                  value={betnr}
                  onChange={(e) => setBetnr(e.target.value.replace(/\D/g, ''))}
                  aria-label={`betnr to relink ${r.id} to`}
                />
                <Button size="sm" variant="outline" disabled={busy || !betnr} data-action="relink" onClick={() => act('relink', { id: r.id, betnr: Number(betnr) })}>
                  relink
                </Button>
              </span>
            ) : (
              <Button key={a} size="sm" variant={a === 'sync' ? 'default' : 'outline'} disabled={busy} data-action={a} onClick={() => act(a, { id: r.id })}>
                {a === 'sync' ? 'sync now' : a}
              </Button>
            ),
          )}
        </div>
      </td>
    </tr>
  )
}

function NeedsPerson({ attention, act, busy, onHistory }: { attention: Answer; act: Act; busy: boolean; onHistory: (id: string) => void }) {
  const body: Json = attention.body ?? {}
  const records: Json[] = body.records ?? []
  const held = records.filter((r) => r.kind === 'held_deletion')
  return (
    <section style={S.section} data-testid="needs-person">
      <h2 style={S.h2}>Needs a person ({records.length})</h2>
      {errorOf(attention) && <p style={{ color: 'var(--error)' }}>{errorOf(attention)}</p>}
      {held.length > 0 && (
        <div style={{ ...S.card, marginBottom: 8, display: 'flex', gap: 8, alignItems: 'center' }} data-testid="held-deletions">
          <span>
            {held.length} deletion(s) held since {when(body.deletions?.held_since?.since)}: {body.deletions?.held_since?.reason}
          </span>
          <Button size="sm" variant="outline" disabled={busy} data-action="release" onClick={() => act('release', {})}>
            release (sync again)
          </Button>
          <Button size="sm" variant="outline" disabled={busy} data-action="confirm" onClick={() => act('confirm', {})}>
            confirm deletions
          </Button>
        </div>
      )}
      {records.length === 0 ? (
        <p style={S.muted}>Nothing waits for a person.</p>
      ) : (
        <table style={S.table}>
          <TableHead columns={['record', 'status', 'reason', 'since', 'actions']} />
          <tbody>
            {records.map((r) => (
              <RecordRow key={`${r.kind}:${r.id}`} r={r} act={act} busy={busy} onHistory={onHistory} />
            ))}
          </tbody>
        </table>
      )}
      {body.parked_total > body.limit && <p style={S.muted}>Showing the oldest {body.limit} of {body.parked_total}.</p>}
    </section>
  )
}

function Conflicts({ conflicts, act, busy, onHistory }: { conflicts: Json[]; act: Act; busy: boolean; onHistory: (id: string) => void }) {
  return (
    <section style={S.section} data-testid="recent-conflicts">
      <h2 style={S.h2}>Recent conflicts (EspoCRM won)</h2>
      {conflicts.length === 0 ? (
        <p style={S.muted}>No conflicts recorded.</p>
      ) : (
        <table style={S.table}>
          <TableHead columns={['when', 'record', 'field', 'EspoCRM (kept)', 'Advoware (overwritten)', '']} />
          <tbody>
            {conflicts.map((c) => (
              <tr key={`${c.id}:${c.field}:${c.at}`} data-testid="conflict-row" data-id={c.id} data-field={c.field}>
                <td style={S.td}>{when(c.at)}</td>
                <td style={{ ...S.td, ...S.mono }}>
                  <button type="button" style={S.link} onClick={() => onHistory(c.id)}>
                    {c.id}
                  </button>
                </td>
                <td style={S.td}>{c.field}</td>
                <td style={S.td}>{show(c.espocrm)}</td>
                <td style={S.td}>{show(c.advoware_overwritten)}</td>
                <td style={S.td}>
                  {c.newest ? (
                    <Button size="sm" variant="outline" disabled={busy} data-action="restore" onClick={() => act('restore', { id: c.id, field: c.field })}>
                      restore the Advoware value
                    </Button>
                  ) : (
                    <span style={S.muted}>a newer conflict exists</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  )
}

function Timeline({ id, history, onClose }: { id: string; history: Answer | null; onClose: () => void }) {
  const entries: Json[] = history?.body?.entries ?? []
  return (
    <section style={S.section} data-testid="history">
      <div style={S.header}>
        <h2 style={S.h2}>
          History of <span style={S.mono}>{id}</span>
        </h2>
        <Button size="sm" variant="ghost" onClick={onClose}>
          close
        </Button>
      </div>
      {history === null && <p style={S.muted}>Loading…</p>}
      {errorOf(history ?? undefined) && <p style={{ color: 'var(--error)' }}>{errorOf(history ?? undefined)}</p>}
      {history && !errorOf(history) && entries.length === 0 && <p style={S.muted}>No history kept for this record.</p>}
      <ol style={{ listStyle: 'none', margin: 0, padding: 0, borderLeft: '2px solid var(--border)' }}>
        {entries.map((e, i) => (
          <li key={i} style={{ padding: '4px 0 8px 12px' }} data-testid="history-entry" data-trigger={e.trigger} data-result={e.result}>
            <div>
              <strong>{when(e.at)}</strong> · {e.trigger} → <strong>{e.result}</strong>
              {e.direction && e.direction !== 'none' ? ` · ${e.direction}` : ''}
              {e.winner ? ` · winner ${e.winner}` : ''}
              {e.extra?.decided_by === 'person' ? ' · a person decided' : ''}
            </div>
            {e.reason && <div style={S.muted}>{e.reason}</div>}
            {(e.changes ?? []).map((c: Json, j: number) => (
              <div key={`c${j}`} style={S.mono}>
                {c.field}
                {c.system ? ` (${c.system})` : ''}: {show(c.old)} → {show(c.new)}
              </div>
            ))}
            {(e.conflicts ?? []).map((c: Json, j: number) => (
              <div key={`k${j}`} style={{ ...S.mono, color: '#d97706' }}>
                conflict {c.field}: EspoCRM {show(c.espocrm)} won over Advoware {show(c.advoware_overwritten)}
              </div>
            ))}
            {e.error && (
              <div style={{ ...S.mono, color: 'var(--error)' }}>
                error {show(e.error.status)} {show(e.error.system ?? '')} {show(e.error.reason ?? e.error.message ?? '')}
              </div>
            )}
          </li>
        ))}
      </ol>
    </section>
  )
}

export const SyncConsole = () => {
  const [overview, setOverview] = useState<Overview | null>(null)
  const [loadError, setLoadError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const [result, setResult] = useState<Result | null>(null)
  const [selected, setSelected] = useState<string | null>(null)
  const [history, setHistory] = useState<Answer | null>(null)

  const load = useCallback(async () => {
    try {
      const res = await fetch(`${BASE}/overview`, { credentials: 'same-origin' })
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      setOverview(await res.json())
      setLoadError(null)
    } catch (err) {
      setLoadError(err instanceof Error ? err.message : 'could not load')
    }
  }, [])

  const loadHistory = useCallback(async (id: string) => {
    setSelected(id)
    setHistory(null)
    const res = await fetch(`${BASE}/history?id=${encodeURIComponent(id)}`, { credentials: 'same-origin' })
    setHistory({ status: res.status, body: await res.json().catch(() => ({})) })
  }, [])

  const act: Act = useCallback(
    async (action, body) => {
      setBusy(true)
      setResult(null)
      try {
        const res = await fetch(`${BASE}/action`, {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ action, ...body }),
        })
        const answer = await res.json().catch(() => ({}))
        const outcome = answer?.result ?? answer?.sync?.result ?? answer?.syncStatus
        // The page is reloaded first, so the result appears with the state it produced.
        await load()
        if (body.id && typeof body.id === 'string') await loadHistory(body.id)
        setResult(
          res.ok
            ? { ok: true, seq: Date.now(), text: `${action} ${body.id ?? ''}: done${outcome ? ` (${outcome})` : ''}` }
            : { ok: false, seq: Date.now(), text: `${action} ${body.id ?? ''}: refused (${res.status}) ${answer?.error ?? ''}` },
        )
      } finally {
        setBusy(false)
      }
    },
    [load, loadHistory],
  )

  useEffect(() => {
    load()
  }, [load])

  return (
    <div style={S.root} data-testid="sync-console">
      <div style={S.header}>
        <div>
          <h1 style={S.h1}>Sync: EspoCRM ↔ Advoware</h1>
          <span style={S.muted}>{overview ? `as of ${when(overview.loadedAt)}` : 'loading…'}</span>
        </div>
        <Button size="sm" variant="default" onClick={load} disabled={busy}>
          Refresh
        </Button>
      </div>
      {loadError && <p style={{ color: 'var(--error)' }}>Could not load the console: {loadError}</p>}
      {result && (
        <div
          data-testid="action-result"
          data-ok={String(result.ok)}
          data-seq={result.seq}
          style={{ ...S.card, borderColor: result.ok ? STATE_COLOUR.ok : STATE_COLOUR.fail }}
        >
          {result.text}
        </div>
      )}
      {overview && (
        <>
          <Health overview={overview} />
          <NeedsPerson attention={overview.attention} act={act} busy={busy} onHistory={loadHistory} />
          {selected && <Timeline id={selected} history={history} onClose={() => setSelected(null)} />}
          <Conflicts conflicts={overview.attention.body?.conflicts ?? []} act={act} busy={busy} onHistory={loadHistory} />
        </>
      )}
    </div>
  )
}
