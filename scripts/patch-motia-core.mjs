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
import { readFileSync, writeFileSync, existsSync } from 'node:fs'

const SERVER = process.argv[2] ?? 'node_modules/@motiadev/core/dist/src/server.mjs'
const CLI = process.argv[3] ?? 'node_modules/motia/dist/cli.mjs'

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
    name: 'cli-errors',
    from: 'program.parseAsync(process.argv).catch(() => {',
    to: 'program.parseAsync(process.argv).catch((error) => { console.error("motia failed:", error);',
    file: CLI,
    all: false,
  },
]

let failed = false
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
  console.log(`patch-motia-core: ${p.name} applied`)
}
process.exit(failed ? 1 : 0)
