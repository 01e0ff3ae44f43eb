"""What one sweep costs in API calls, measured on the real stack (Motia + Redis + simulators).

    from tests.support.sweep_cost import sweep_cost
    sweep_cost(10_000, 10, log_dir)     # -> dict (see `measure`)

Procedure: start a stack with `--records N --no-demo` (N linked, equal pairs), keep the cron
sweep out of the way, prime it (the ops backfill, then sweeps until a sweep finds nothing and
every record is clean and snapshotted), edit `n_changed` records in Advoware as a person would (user ANNA),
run ONE sweep through `POST /vmh/beteiligte/sync/sweep`, wait until every edit is in EspoCRM,
and count the service's calls in both simulators' call logs since a marker.

Calls are split by route: `list` calls are the sweep's own reads (collection GETs on both
systems); `record` calls are the per-record syncs of the work it found (GET/PUT by id);
`token` calls are Advoware logins. Only the service's users (EspoCRM `sync-api`, Advoware
`SYNC`) are counted, never the test's own reads and edits.
"""

from __future__ import annotations

import math
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx

from sandbox import config as cfg
from sandbox.act import Actor
from services.store import keys
from tests.support.processes import PROJECT_ROOT
from tests.support.stack import PY, Stack, run_stack

ADMIN = {"Authorization": f"Bearer {cfg.SYNC_ADMIN_TOKEN}"}
# The service signs in to both simulators as these users; people use others.
SERVICE_USERS = {cfg.ESPO_API_USER_NAME, cfg.ADVO_USER}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
FIRST_BETNR = cfg.ADVO_FIRST_BETNR


# --------------------------------------------------------------------------- call logs


def log_seq(base: str) -> int:
    return int(httpx.get(f"{base}/__sandbox/calls", params={"since": 10**12}, timeout=30).json()["seq"])


def service_calls(base: str, since: int) -> list[dict[str, Any]]:
    data = httpx.get(f"{base}/__sandbox/calls", params={"since": since}, timeout=60).json()
    return [c for c in data["calls"] if c.get("user") in SERVICE_USERS]


def kind_of(call: dict[str, Any]) -> str:
    path = call["path"].rstrip("/")
    if path.endswith("/api/v1/Token"):
        return "token"
    if call["method"] == "GET" and (
        path.endswith("/api/v1/CBeteiligte") or path.endswith("/advonet/Beteiligte")
    ):
        return "list"
    return "record"


def summarise(espo: list[dict[str, Any]], advo: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"total": len(espo) + len(advo)}
    for kind in ("list", "record", "token"):
        out[kind] = {
            "espocrm": sum(1 for c in espo if kind_of(c) == kind),
            "advoware": sum(1 for c in advo if kind_of(c) == kind),
        }
    out["writes"] = sum(1 for c in espo + advo if c["method"] in WRITE_METHODS and kind_of(c) != "token")
    routes: Counter[str] = Counter(f"{c['method']} {c['route']}" for c in espo + advo)
    out["by_route"] = dict(sorted(routes.items()))
    return out


# --------------------------------------------------------------------------- stack helpers


def hold_cron(stack: Stack, hours: int = 3, holder: str = "held-by-test", minutes: int | None = None) -> None:
    """Claim the cron sweep's and the ops watch's ticks for the next hours (or `minutes`), so only
    our own sweeps (and health checks) run: none lands in the middle of a measurement."""
    import redis

    span = hours * 60 if minutes is None else minutes
    r = redis.Redis.from_url(stack.redis_url)
    try:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        pipe = r.pipeline()
        for minute in range(span):
            tick = (now + timedelta(minutes=minute)).strftime("%Y%m%d%H%M")
            pipe.set(keys.sweep_tick(tick), holder, ex=span * 60)
            pipe.set(keys.watch_tick(tick), holder, ex=span * 60)
        pipe.execute()
    finally:
        r.close()


def sweep(stack: Stack) -> tuple[dict[str, Any], float]:
    start = time.monotonic()
    resp = httpx.post(f"{stack.motia_url}/vmh/beteiligte/sync/sweep", headers=ADMIN, timeout=300)
    resp.raise_for_status()
    return resp.json(), time.monotonic() - start


def queues_idle(stack: Stack) -> bool:
    data = httpx.get(f"{stack.motia_url}/__motia/bullmq/queues", timeout=30).json()
    return all(
        q["stats"].get("waiting", 0) + q["stats"].get("active", 0) + q["stats"].get("delayed", 0) == 0
        for q in data.get("queues", [])
        if not q.get("isDLQ")
    )


def wait_quiet(stack: Stack, quiet: float = 1.0, timeout: float = 600) -> None:
    """Until Motia's queues are empty and neither simulator logged a call for `quiet` s."""
    deadline = time.monotonic() + timeout
    last = (log_seq(stack.espo_url), log_seq(stack.advo_url))
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = (log_seq(stack.espo_url), log_seq(stack.advo_url))
        if now != last or not queues_idle(stack):
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= quiet:
            return
    raise TimeoutError("the service did not go quiet")


def ops(stack: Stack, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the ops CLI against the stack (as an operator would, with the stack's settings)."""
    return subprocess.run(
        [PY, "-m", "services.ops", *args],
        cwd=PROJECT_ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def count_where(actor: Actor, attribute: str, value: Any) -> int:
    resp = actor.espo.get(
        "CBeteiligte",
        params={
            "where[0][type]": "equals",
            "where[0][attribute]": attribute,
            "where[0][value]": value,
            "select": "id",
            "maxSize": 1,
        },
    )
    resp.raise_for_status()
    return int(resp.json()["total"])


OVERLAP = timedelta(minutes=2)  # both pollers re-read this much before their watermark


def prime(
    stack: Stack, actor: Actor, n_records: int, *, settle: str = "skip", max_sweeps: int = 4
) -> dict[str, Any]:
    """Bring the stack to steady state: the first-run backfill (syncs, snapshots and verifies
    every pair in one process), then sweeps until a sweep finds nothing.

    Steady state also means: no priming burst in the pollers' overlap windows. A watermark
    stays at the newest change seen (never "now"), so after the backfill wrote every EspoCRM
    record, each sweep re-reads the last 2 minutes of that burst (our own writes: list pages,
    no syncs) until the next change moves the watermark on. In a firm's steady state that
    window holds 2 minutes of ordinary edits. `settle="skip"` (default) moves the EspoCRM
    watermark past the burst; `settle="none"` measures with the burst still in the window."""
    started = time.monotonic()
    done = ops(stack, "--json", "backfill", "--concurrency", "16")
    if done.returncode != 0:
        raise AssertionError(f"backfill failed: {done.stderr[-2000:]}")
    backfill_seconds = time.monotonic() - started
    summaries = []
    for _ in range(max_sweeps):
        summary, _secs = sweep(stack)
        summaries.append(summary)
        wait_quiet(stack)
        if summary.get("records") == 0:
            break
    else:
        raise AssertionError(f"the sweep did not settle: {summaries}")
    if count_where(actor, "syncStatus", "clean") < n_records:
        raise AssertionError("primed, but not every record is clean")
    if settle == "skip":
        skip_espo_overlap(stack)
    return {
        "prime_backfill_seconds": round(backfill_seconds, 1),
        "prime_seconds": round(time.monotonic() - started, 1),
        "prime_sweeps": summaries,
        "settle": settle,
    }


def skip_espo_overlap(stack: Stack) -> None:
    """Move the EspoCRM watermark one overlap window ahead, as later ordinary edits would.
    Only for measurements that know nothing else changed meanwhile."""
    skip_overlap(stack, keys.WATERMARK_ESPOCRM)


def skip_overlap(stack: Stack, watermark_key: str) -> None:
    """Move the watermark stored at `watermark_key` one overlap window ahead."""
    import redis

    r = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        raw = cast("str | None", r.get(watermark_key))  # sync client: a str, not an Awaitable
        if raw:
            r.set(watermark_key, (datetime.fromisoformat(raw) + OVERLAP).isoformat())
    finally:
        r.close()


def edit_advoware(actor: Actor, betnrs: Sequence[int], titel: str) -> None:
    """A person edits these records in Advoware (GET, change, full PUT as user ANNA)."""
    for betnr in betnrs:
        rec = actor.advo_call("GET", f"Beteiligte/{betnr}").json()
        for ro in ("betNr", "geaendertAm", "angelegtAm"):
            rec.pop(ro, None)
        rec["titel"] = titel
        actor.advo_call("PUT", f"Beteiligte/{betnr}", json=rec)


# --------------------------------------------------------------------------- measuring


def measure(stack: Stack, actor: Actor, n_records: int, betnrs: Sequence[int], titel: str) -> dict[str, Any]:
    """Edit `betnrs` in Advoware, run one sweep, wait until EspoCRM has every edit; the calls."""
    edit_advoware(actor, betnrs, titel)
    time.sleep(1.1)  # geaendertAm has 1 s resolution: the edits are strictly before the sweep
    espo_mark, advo_mark = log_seq(stack.espo_url), log_seq(stack.advo_url)
    started = time.monotonic()
    summary, sweep_seconds = sweep(stack)
    deadline = time.monotonic() + 600
    while count_where(actor, "titel", titel) < len(betnrs):
        if time.monotonic() > deadline:
            raise TimeoutError(f"edits not in EspoCRM after one sweep: {summary}")
        time.sleep(0.25)
    synced_seconds = time.monotonic() - started
    wait_quiet(stack)
    calls = summarise(service_calls(stack.espo_url, espo_mark), service_calls(stack.advo_url, advo_mark))
    n = len(betnrs)
    return {
        "records": n_records,
        "changed": n,
        "sweep_summary": summary,
        "calls": calls,
        "sweep_list_calls": calls["list"]["espocrm"] + calls["list"]["advoware"],
        "record_calls": calls["record"]["espocrm"] + calls["record"]["advoware"],
        "calls_per_changed_record": round(calls["total"] / n, 2) if n else None,
        "advoware_pages_if_listing_everything": math.ceil(n_records / 100),
        "espocrm_pages_if_listing_everything": math.ceil(n_records / 200),
        "sweep_seconds": round(sweep_seconds, 3),
        "seconds_until_in_espocrm": round(synced_seconds, 3),
    }


@contextmanager
def primed_stack(
    n_records: int, log_dir: Path, *, settle: str = "skip"
) -> Iterator[tuple[Stack, Actor, dict[str, Any]]]:
    with run_stack(
        log_dir, sandbox_args=["--records", str(n_records), "--no-demo", "--no-webhooks"]
    ) as stack:
        hold_cron(stack)
        actor = Actor(stack.espo_url, stack.advo_url)
        yield stack, actor, prime(stack, actor, n_records, settle=settle)


def sweep_costs(
    n_records: int, changed_counts: Sequence[int], log_dir: Path, *, settle: str = "skip"
) -> list[dict[str, Any]]:
    """One primed stack, one measured sweep per entry of `changed_counts` (different records
    each round). See `prime` for `settle`."""
    if sum(changed_counts) > n_records:
        raise ValueError("more changes than records")
    results = []
    with primed_stack(n_records, log_dir, settle=settle) as (stack, actor, info):
        offset = 0
        for i, n in enumerate(changed_counts):
            betnrs = range(FIRST_BETNR + offset, FIRST_BETNR + offset + n)
            offset += n
            result = measure(stack, actor, n_records, list(betnrs), f"Dr. R{i}")
            results.append({**result, **info})
    return results


def sweep_cost(n_records: int, n_changed: int, log_dir: Path, *, settle: str = "skip") -> dict[str, Any]:
    """The figure for one setting: API calls and seconds of one sweep with `n_changed` of
    `n_records` records edited in Advoware (steady state: see `prime`)."""
    return sweep_costs(n_records, [n_changed], log_dir, settle=settle)[0]


if __name__ == "__main__":  # python -m tests.support.sweep_cost 10000 10 1000 [--settle=skip|none]
    import json
    import sys
    import tempfile

    args = [a for a in sys.argv[1:] if not a.startswith("--settle=")]
    settle = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--settle=")), "skip")
    n, *counts = (int(a) for a in args or ["2000", "10", "200"])
    for row in sweep_costs(n, counts, Path(tempfile.mkdtemp()), settle=settle):
        row.pop("prime_sweeps", None)
        print(json.dumps(row, indent=2))
