import { defineConfig } from '@motiadev/core'
import bullmqPlugin from '@motiadev/plugin-bullmq/plugin'
import endpointPlugin from '@motiadev/plugin-endpoint/plugin'
import logsPlugin from '@motiadev/plugin-logs/plugin'
import observabilityPlugin from '@motiadev/plugin-observability/plugin'
import statesPlugin from '@motiadev/plugin-states/plugin'
import syncConsolePlugin from './plugins/sync-console/plugin'

// Motia and the sync service share one Redis (REDIS_URL): an operator runs one, not two.
// Motia keeps its keys under motia:* and bull:*, the service under vmh:*.
function redisFromUrl(raw: string | undefined) {
  const url = new URL(raw ?? 'redis://127.0.0.1:6379/0')
  const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0
  return {
    useMemoryServer: false as const,
    host: url.hostname || '127.0.0.1',
    port: Number(url.port || 6379),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(Number.isFinite(db) && db > 0 ? { db } : {}),
  }
}

export default defineConfig({
  // syncConsolePlugin: the "Sync" tab (plugins/sync-console; docs/ops.md "The Sync tab").
  plugins: [observabilityPlugin, statesPlugin, endpointPlugin, logsPlugin, bullmqPlugin, syncConsolePlugin],
  redis: redisFromUrl(process.env.REDIS_URL),
})
