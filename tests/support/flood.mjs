// A bounded flood of unsigned webhook requests, for the load test (tests/e2e) and bench figure 8.
//
//   node tests/support/flood.mjs URL SECONDS IN_FLIGHT   -> one JSON line on stdout:
//   {"sent", "answered", "statuses": {"401": n, ...}, "errors", "seconds", "per_second",
//    "latency_ms": {"p50", "p99", "max"}}
//
// Loopback only (the URL's host must be 127.0.0.1, ::1 or localhost): it is a test of our own
// service, never a tool against another host. It stops by itself after SECONDS (requests in flight
// then are awaited, at most 10 s). Node's HTTP client (keep-alive, IN_FLIGHT sockets) so that the
// load generator costs far less CPU than the service it loads.
import http from 'node:http'

const [url, seconds, inFlight] = [new URL(process.argv[2]), Number(process.argv[3]), Number(process.argv[4])]
if (!['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname)) throw new Error(`loopback only, not ${url.hostname}`)
if (!(seconds > 0 && seconds <= 120 && inFlight > 0 && inFlight <= 100)) throw new Error('SECONDS 0..120, IN_FLIGHT 1..100')

const body = Buffer.from('[{"id":"flood0000000000001","name":"x"}]')
const agent = new http.Agent({ keepAlive: true, maxSockets: inFlight, noDelay: true })
const statuses = {}
const latencies = []
let sent = 0
let errors = 0
const started = performance.now()
const deadline = started + seconds * 1000

const one = () =>
  new Promise((resolve) => {
    const t0 = performance.now()
    const req = http.request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length }, timeout: 10_000 },
      (res) => {
        res.resume()
        res.on('end', () => {
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1
          latencies.push(performance.now() - t0)
          resolve()
        })
      },
    )
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', () => {
      errors += 1
      resolve()
    })
    req.end(body)
    sent += 1
  })

const worker = async () => {
  while (performance.now() < deadline) await one()
}
const hardStop = setTimeout(() => process.exit(2), (seconds + 10) * 1000)
await Promise.all(Array.from({ length: inFlight }, worker))
clearTimeout(hardStop)
agent.destroy()
const elapsed = (performance.now() - started) / 1000
latencies.sort((a, b) => a - b)
const at = (p) => (latencies.length ? Math.round(latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] * 10) / 10 : null)
const answered = latencies.length
console.log(
  JSON.stringify({
    sent,
    answered,
    statuses,
    errors,
    seconds: Math.round(elapsed * 10) / 10,
    per_second: Math.round((answered / elapsed) * 10) / 10,
    latency_ms: { p50: at(50), p99: at(99), max: at(100) },
  }),
)
