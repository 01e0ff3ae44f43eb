"""The one registry of the service's Redis keys: every `vmh:*` name is built here, nowhere else.

The prefix `vmh:` keeps the service's keys apart from Motia's own (`motia:*`, `bull:*`) on the
one Redis an operator runs. A test (tests/unit/test_store_keys.py) fails if a `vmh:` literal
appears anywhere else in the code.

| key                                        | type   | holds                                          | lifetime        |
|--------------------------------------------|--------|------------------------------------------------|-----------------|
| `vmh:lock:<espo id>`                       | string | record lease (owner token)                     | lease TTL       |
| `vmh:again:<espo id>`                      | string | "sync once more" flag for the lease holder     | 2 x lease TTL   |
| `vmh:snap:<espo id>`                       | string | last-synced snapshot, writes in doubt (JSON)   | none            |
| `vmh:betnr:<betnr>`                        | string | betnr -> espo id index of the snapshots        | none            |
| `vmh:intent:<espo id>`                     | string | create intent (JSON)                           | 14 days         |
| `vmh:create:unresolved:<lookup key>`       | set    | espo ids whose create intent holds this key    | 14 days         |
| `vmh:unlinked:<espo id>`                   | hash   | not written any more (the unlink is a recent   | none            |
|                                            |        | event); `forget` erases older versions' marks  |                 |
| `vmh:conflict:pending:<espo id>`           | string | conflicts not yet reported                     | 14 days         |
| `vmh:conflict:notified:<espo id>:<digest>` | string | a conflict (field, both values) was notified   | 14 days         |
| `vmh:pending:advoware`                     | zset   | Advoware changes emitted, sync not finished    | none            |
| `vmh:watermark:advoware` / `:espocrm`      | string | change-poll watermarks (ISO UTC)               | none            |
| `vmh:sweep:running`                        | string | sweep lease                                    | lease TTL       |
| `vmh:sweep:tick:<YYYYmmddHHMM>`            | string | one cron run per tick across instances         | 1 h             |
| `vmh:sweep:last`                           | string | summary of the last sweep (JSON)               | none            |
| `vmh:backfill:running`                     | string | backfill lease                                 | lease TTL       |
| `vmh:backfill:run`                         | string | backfill run state (JSON)                      | none            |
| `vmh:backfill:<run id>:done`               | hash   | backfill checkpoints                           | 30 days         |
| `vmh:advoware:token:<kanzlei>:<user>`      | string | Advoware access token (JSON)                   | token lifetime  |
| `vmh:advoware:token:<kanzlei>:<user>:lock` | string | token single-flight lease                      | lease TTL       |
| `vmh:advoware:concurrency:<kanzlei>`       | zset   | Advoware call semaphore (and its `:wake` list) | lease           |
| `vmh:webhook:<event>:<sha256 of body>`     | string | webhook batch accepted (per-record markers)    | 2 h             |
| `vmh:webhook:gen:<espo id>`                | string | batches accepted naming the record (counter)   | 2 h             |
| `vmh:identity:entries`                     | hash   | identity index: betnr -> identity (JSON)       | none            |
| `vmh:identity:key:<lookup key>`            | set    | identity index: lookup key -> betnrs           | none            |
| `vmh:identity:state`                       | hash   | identity index build state / checkpoint        | none            |
| `vmh:identity:building`                    | string | identity index build lease                     | lease TTL       |
| `vmh:claim:identity:<lookup key>`          | string | identity claim: one create/link per identity   | lease TTL       |
| `vmh:claim:betnr:<betnr>`                  | string | betnr claim: one record links a betnr at a time| lease TTL       |
| `vmh:links:audit`                          | string | last "one betnr, one record" check (JSON)      | none            |
| `vmh:own:espocrm`                          | hash   | espo id -> modifiedAt of our last EspoCRM write| none            |
| `vmh:breaker:<system>`                     | string | circuit breaker open (JSON: since, kind, why)  | until the probe |
| `vmh:breaker:<system>:held`                | zset   | records waiting for the system (id -> since)   | until released  |
| `vmh:breaker:<system>:probe`               | string | last probe: pending / ok / down, and when      | 2 min           |
| `vmh:breaker:deletions:waiting`            | set    | deletions held by the bulk-404 guard           | until released  |
| `vmh:deletions:window`                     | hash   | Advoware reads / 404s since the sweep started  | next sweep      |
| `vmh:deletions:confirmed`                  | set    | held 404s a person confirmed as deletions      | 1 day           |
| `vmh:deletions:scan`                       | string | start of the last complete deletion scan       | none            |
| `vmh:stats`                                | hash   | counters                                       | none            |
| `vmh:notifications`                        | list   | recent notifications sent                      | trimmed         |
| `vmh:recent:<kind>`                        | list   | recent failures / conflicts                    | trimmed         |
| `vmh:history:<espo id>`                    | list   | the record's last decisions (JSON, newest first) | count + age   |
| `vmh:metrics`                              | hash   | Prometheus counters and histogram buckets      | none            |
| `vmh:notify:outbox`                        | hash   | notices not yet delivered (id -> JSON)         | until delivered |
| `vmh:notify:username:<user id>`            | string | the notify user's userName (lookup cache)      | 1 day           |
| `vmh:alert:active` / `:condition:<name>`   | set / hash | alert conditions and their state           | until cleared   |
| `vmh:watch:tick:<YYYYmmddHHMM>`            | string | one ops watch per tick across instances        | 1 h             |
| `vmh:health:last`                          | string | the last health report (JSON)                  | 15 s            |
| `vmh:advoware:check`                       | string | findings of the start-up check-advoware (JSON) | none            |

Losing any of them (Redis restarted empty) is survivable; docs/architecture.md ("Redis
restarted empty") says what each loss costs and how the service rebuilds it.
"""

from __future__ import annotations

PREFIX = "vmh:"


def _key(*parts: object) -> str:
    return PREFIX + ":".join(str(p) for p in parts)


# ---------------------------------------------------------------- per record
def record_lock(espo_id: str) -> str:
    return _key("lock", espo_id)


def record_again(espo_id: str) -> str:
    return _key("again", espo_id)


def snapshot(espo_id: str) -> str:
    return _key("snap", espo_id)


def betnr_index(betnr: int) -> str:
    return _key("betnr", betnr)


BETNR_INDEX_PREFIX = _key("betnr", "")  # SCAN pattern: BETNR_INDEX_PREFIX + "*"


def create_intent(espo_id: str) -> str:
    return _key("intent", espo_id)


def unlinked(espo_id: str) -> str:
    return _key("unlinked", espo_id)


def pending_conflicts(espo_id: str) -> str:
    return _key("conflict", "pending", espo_id)


def conflict_notified(espo_id: str, digest: str) -> str:
    """`digest`: of the conflict's field and both values (services/sync/stores.py)."""
    return _key("conflict", "notified", espo_id, digest)


def unresolved_create(lookup_key: str) -> str:
    """The records with a create intent (POST outcome not settled) on this identity lookup key
    (services/sync/intents.py): another record's create of the same party waits for them."""
    return _key("create", "unresolved", lookup_key)


# Long enough to outlive any retry schedule; an intent older than this is stale anyway.
CREATE_INTENT_TTL_SECONDS = 14 * 24 * 3600
PENDING_CONFLICTS_TTL_SECONDS = 14 * 24 * 3600
# A notified mark only has to outlive the pending entry that could report its conflict again.
CONFLICT_NOTIFIED_TTL_SECONDS = PENDING_CONFLICTS_TTL_SECONDS

# ---------------------------------------------------------------- change polls and sweep
PENDING_ADVOWARE = _key("pending", "advoware")
WATERMARK_ADVOWARE = _key("watermark", "advoware")
WATERMARK_ESPOCRM = _key("watermark", "espocrm")

SWEEP_RUNNING = _key("sweep", "running")
# Renewed while the sweep runs; a dead sweeper's lease frees itself after this.
SWEEP_LEASE_SECONDS = 600
SWEEP_LAST = _key("sweep", "last")
SWEEP_TICK_TTL_SECONDS = 3600


def sweep_tick(tick: str) -> str:
    return _key("sweep", "tick", tick)


# ---------------------------------------------------------------- backfill
BACKFILL_RUNNING = _key("backfill", "running")
BACKFILL_RUN_STATE = _key("backfill", "run")
BACKFILL_LEASE_SECONDS = 120
BACKFILL_CHECKPOINT_TTL_SECONDS = 30 * 24 * 3600


def backfill_done(run_id: str) -> str:
    return _key("backfill", run_id, "done")


# ---------------------------------------------------------------- identity index
IDENTITY_ENTRIES = _key("identity", "entries")
IDENTITY_STATE = _key("identity", "state")
IDENTITY_BUILDING = _key("identity", "building")
IDENTITY_BUILD_LEASE_SECONDS = 120


def identity_lookup(lookup_key: str) -> str:
    return _key("identity", "key", lookup_key)


# ---------------------------------------------------------------- claims (services/sync/claims.py)
# Not under `vmh:identity:key:` / `vmh:betnr:`: those prefixes are SCANned as index entries.
def identity_claim(lookup_key: str) -> str:
    return _key("claim", "identity", lookup_key)


def betnr_claim(betnr: int) -> str:
    return _key("claim", "betnr", betnr)


LINK_AUDIT = _key("links", "audit")


# ---------------------------------------------------------------- Advoware client
def advoware_token(kanzlei: str, user: str) -> str:
    return _key("advoware", "token", kanzlei, user)


def advoware_token_lock(kanzlei: str, user: str) -> str:
    return advoware_token(kanzlei, user) + ":lock"


def advoware_concurrency(kanzlei: str) -> str:
    return _key("advoware", "concurrency", kanzlei)


# ---------------------------------------------------------------- webhook intake
def webhook_delivery(event: str, body_sha256: str) -> str:
    return _key("webhook", event, body_sha256)


def webhook_generation(record_id: str) -> str:
    return _key("webhook", "gen", record_id)


# A redelivery comes at most ~36 min after the first attempt; keep the record 2 h.
WEBHOOK_DEDUP_TTL_SECONDS = 2 * 3600

# ---------------------------------------------------------------- failure scheduling
OWN_WRITES_ESPOCRM = _key("own", "espocrm")


def breaker(system: str) -> str:
    return _key("breaker", system)


def breaker_held(system: str) -> str:
    return _key("breaker", system, "held")


def breaker_probe(system: str) -> str:
    return _key("breaker", system, "probe")


# Probes of a system are spaced across processes: a failure's confirming probe reuses an answer
# younger than 30 s; the every-minute cron (and a sweep at the same tick) one younger than 10 s,
# so the cron still probes every minute after a confirming probe (at most 2 probes a minute).
BREAKER_PROBE_SPACING_SECONDS = 30
BREAKER_RELEASE_SPACING_SECONDS = 10


def breaker_waiting(system: str) -> str:
    """The bulk-404 guard's held deletions (services/sync/deletions.py); for the systems it is
    the set of records an earlier version held (drained once on release)."""
    return _key("breaker", system, "waiting")


DELETIONS_WINDOW = _key("deletions", "window")
DELETIONS_CONFIRMED = _key("deletions", "confirmed")
DELETIONS_CONFIRMED_TTL_SECONDS = 24 * 3600
DELETIONS_SCAN = _key("deletions", "scan")

# ---------------------------------------------------------------- reporting
STATS = _key("stats")
NOTIFICATIONS = _key("notifications")


def recent(kind: str) -> str:
    return _key("recent", kind)


# ---------------------------------------------------------------- operations (services/ops)
METRICS = _key("metrics")
NOTIFY_OUTBOX = _key("notify", "outbox")
ALERT_ACTIVE = _key("alert", "active")
HEALTH_LAST = _key("health", "last")
ADVOWARE_CHECK_LAST = _key("advoware", "check")


def watch_tick(tick: str) -> str:
    return _key("watch", "tick", tick)


def history(espo_id: str) -> str:
    return _key("history", espo_id)


def notify_user_name(user_id: str) -> str:
    return _key("notify", "username", user_id)


def alert_condition(name: str) -> str:
    return _key("alert", "condition", name)


def scratch(*parts: object) -> str:
    """A throw-away key under the service's prefix, for tests and benchmarks only."""
    return _key("test", *parts)
